//go:build unix

package mcpkind

import (
	"os/exec"
	"syscall"
)

const (
	termSignal = syscall.SIGTERM
	killSignal = syscall.SIGKILL
)

// setProcessGroup starts cmd in a process group of its own, so that stop
// can signal its descendants too, and so that a Ctrl-C in mcptower's
// terminal reaches mcptower (which shuts down gracefully) rather than the
// upstream.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// signalGroup signals cmd's process group; errors (the group is gone) are
// ignored.
func signalGroup(cmd *exec.Cmd, sig syscall.Signal) {
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, sig)
	}
}
