package mcpkind

import (
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// process is a running stdio upstream: the child, our ends of its pipes,
// and the goroutines that reap it and read its stderr.
type process struct {
	cmd    *exec.Cmd
	stdin  *os.File // our write end of its stdin
	stdout *os.File // our read end of its stdout
	stderr *os.File // our read end of its stderr

	exited    chan struct{} // closed once cmd.Wait has returned
	exitErr   error         // cmd.Wait's result, set before exited is closed
	stderrEOF chan struct{} // closed when the stderr reader is done

	tail *lineTail
}

// terminateGrace is how long stop waits after closing stdin (and again after
// SIGTERM) before escalating.
var terminateGrace = 2 * time.Second

// startProcess starts the command with pipes of its own (not exec's copying
// goroutines, so that reaping never races with reading) in a new process
// group, so that stop reaches its children too (npx runs node). wg tracks
// the two goroutines it starts.
func startProcess(s *settings, logger *slog.Logger, wg *sync.WaitGroup) (*process, error) {
	cmd := exec.Command(s.Command, s.Args...)
	cmd.Dir = s.Cwd
	cmd.Env = s.environ()
	setProcessGroup(cmd)
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		if err == nil {
			files = append(files, r, w)
		}
		return r, w, err
	}
	inR, inW, err := pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := pipe()
	if err != nil {
		closeAll()
		return nil, err
	}
	errR, errW, err := pipe()
	if err != nil {
		closeAll()
		return nil, err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	if err := cmd.Start(); err != nil {
		closeAll()
		return nil, fmt.Errorf("start %s: %w", s.Command, err)
	}
	// The child has its ends now; keeping ours open would hide its exit.
	inR.Close()
	outW.Close()
	errW.Close()
	p := &process{
		cmd: cmd, stdin: inW, stdout: outR, stderr: errR,
		exited: make(chan struct{}), stderrEOF: make(chan struct{}),
		tail: &lineTail{max: 10},
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		p.exitErr = cmd.Wait()
		close(p.exited)
	}()
	go func() {
		defer wg.Done()
		defer close(p.stderrEOF)
		p.readStderr(logger)
	}()
	return p, nil
}

// readStderr logs every line the process writes to stderr, and keeps the
// last few for error messages. Long lines are logged in pieces; it never
// stops reading before EOF, so the child never blocks on a full pipe.
func (p *process) readStderr(logger *slog.Logger) {
	r := bufio.NewReaderSize(p.stderr, 4096)
	for {
		line, _, err := r.ReadLine()
		if len(line) > 0 {
			text := strings.TrimRight(string(line), "\r")
			p.tail.add(text)
			logger.Info("upstream stderr", "line", text, "pid", p.cmd.Process.Pid)
		}
		if err != nil {
			return
		}
	}
}

// pid returns the process id.
func (p *process) pid() int { return p.cmd.Process.Pid }

// stderrSettle bounds how long exitError waits for the stderr reader to
// reach the end of what an exited process wrote.
const stderrSettle = 200 * time.Millisecond

// exitError describes how the process ended, with the end of its stderr;
// nil while it runs.
func (p *process) exitError() error {
	select {
	case <-p.exited:
	default:
		return nil
	}
	// The last lines may still be in the pipe: the reader ends at EOF,
	// which the exit brings (unless a child of the process holds the pipe).
	t := time.NewTimer(stderrSettle)
	select {
	case <-p.stderrEOF:
	case <-t.C:
	}
	t.Stop()
	status := "exited"
	if p.exitErr != nil {
		status = p.exitErr.Error() // "exit status 1", "signal: killed"
	} else if p.cmd.ProcessState != nil {
		status = p.cmd.ProcessState.String()
	}
	if t := p.tail.String(); t != "" {
		return fmt.Errorf("process %d %s; its last stderr lines: %s", p.pid(), status, t)
	}
	return fmt.Errorf("process %d %s", p.pid(), status)
}

// stop ends the process: it closes stdin (the MCP way of asking a stdio
// server to exit), waits, then signals the process group with SIGTERM and
// finally SIGKILL. It returns once the process is reaped and its stderr is
// drained (or abandoned, if a stray descendant keeps it open).
func (p *process) stop() {
	p.stdin.Close()
	wait := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-p.exited:
			return true
		case <-t.C:
			return false
		}
	}
	if !wait(terminateGrace) {
		signalGroup(p.cmd, termSignal)
		if !wait(terminateGrace) {
			signalGroup(p.cmd, killSignal)
			<-p.exited
		}
	}
	// Descendants that outlive the leader are strays: no one else will
	// stop them.
	signalGroup(p.cmd, killSignal)
	t := time.NewTimer(time.Second)
	select {
	case <-p.stderrEOF:
	case <-t.C:
	}
	t.Stop()
	p.stderr.Close() // unblocks the reader if something still holds the pipe
	<-p.stderrEOF
	p.stdout.Close()
}

// lineTail keeps the last max lines written to it.
type lineTail struct {
	mu    sync.Mutex
	max   int
	lines []string
}

func (t *lineTail) add(line string) {
	if line == "" {
		return
	}
	if len(line) > 300 {
		line = line[:300] + "…"
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
}

func (t *lineTail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, " | ")
}
