//go:build !unix

package mcpkind

import (
	"os"
	"os/exec"
)

var (
	termSignal = os.Kill
	killSignal = os.Kill
)

// setProcessGroup does nothing where process groups are not available.
func setProcessGroup(*exec.Cmd) {}

// signalGroup signals the process itself.
func signalGroup(cmd *exec.Cmd, sig os.Signal) {
	if cmd.Process != nil {
		_ = cmd.Process.Signal(sig)
	}
}
