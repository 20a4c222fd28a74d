package config

import (
	"context"
	"crypto/sha256"
	"os"
	"time"
)

// DefaultWatchInterval is Watch's polling interval when it is given none.
const DefaultWatchInterval = 2 * time.Second

// racyWindow is how close to a snapshot a file's modification time must be
// for Watch to re-read it even though its size and time look unchanged:
// file systems with coarse timestamps can hide a second write in the same
// tick (git calls this "racy clean").
const racyWindow = 2 * time.Second

// Watch polls the file at path every interval (DefaultWatchInterval if
// interval <= 0) and calls onChange when its content changes, or when it
// appears or disappears, once the new state has held for one interval (so
// a file being written is not reported half-written). Touching the file
// without changing it is not a change. Watch takes its first snapshot before it returns, so any change
// after that is reported; it then polls in a goroutine that ends when ctx
// is done. onChange is called from that goroutine, one call at a time; a
// slow onChange delays the next poll.
//
// Polling (the size and modification time, and a hash of the content when
// those may not tell) needs no OS-specific notification API and survives
// editors that save by renaming a new file over the old one.
func Watch(ctx context.Context, path string, interval time.Duration, onChange func()) {
	if interval <= 0 {
		interval = DefaultWatchInterval
	}
	reported := snapshot(path, fileState{}) // the state onChange last saw
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		prev := reported // the previous poll's state
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			cur := snapshot(path, prev)
			// Report a change once it has settled (two polls agree), so
			// that a file caught half-written is not reloaded.
			settled := cur.sameContent(prev)
			prev = cur
			if settled && !cur.sameContent(reported) && ctx.Err() == nil {
				reported = cur
				onChange()
			}
		}
	}()
}

// fileState is what Watch compares between polls.
type fileState struct {
	exists  bool
	size    int64
	modTime time.Time
	sum     [sha256.Size]byte
	taken   time.Time // when sum was computed
}

func (s fileState) sameContent(o fileState) bool {
	return s.exists == o.exists && s.sum == o.sum
}

// snapshot returns the state of path, re-using prev's hash when the size
// and modification time are unchanged and old enough to be trusted.
func snapshot(path string, prev fileState) fileState {
	now := time.Now()
	fi, err := os.Stat(path)
	if err != nil {
		return fileState{}
	}
	cur := fileState{exists: true, size: fi.Size(), modTime: fi.ModTime()}
	if prev.exists && prev.size == cur.size && prev.modTime.Equal(cur.modTime) && prev.taken.Sub(cur.modTime) > racyWindow {
		cur.sum, cur.taken = prev.sum, prev.taken
		return cur
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fileState{}
	}
	cur.sum, cur.taken = sha256.Sum256(data), now
	return cur
}
