package plugin

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// safetyPoll bounds each inotify wait, so a missed event (the directory replaced, a filesystem without
// inotify) costs at most this long.
const safetyPoll = 200 * time.Millisecond

// dirPoll is the stat interval while the marker's directory does not exist yet (nothing to watch).
const dirPoll = 20 * time.Millisecond

// WaitForFile returns true as soon as path exists, false once timeout has passed without it. It watches
// the parent directory with inotify (woken by a create or rename into it) and stats on every wake-up;
// while the directory itself is missing it stats every few milliseconds.
func WaitForFile(path string, timeout time.Duration) (bool, error) {
	dir := filepath.Dir(path)
	deadline := time.Now().Add(timeout)
	fd := -1
	defer func() {
		if fd >= 0 {
			_ = unix.Close(fd)
		}
	}()
	for {
		if _, err := os.Stat(path); err == nil {
			return true, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return false, err
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return false, nil
		}
		if fd < 0 {
			var err error
			fd, err = unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
			if err != nil {
				return false, err
			}
			if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE|unix.IN_MOVED_TO|unix.IN_DELETE_SELF|unix.IN_MOVE_SELF); err != nil {
				_ = unix.Close(fd)
				fd = -1
				time.Sleep(min(remaining, dirPoll))
				continue
			}
			continue // the file may have appeared before the watch: stat again
		}
		ms := int(min(remaining, safetyPoll) / time.Millisecond)
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, max(ms, 1)); err != nil && !errors.Is(err, unix.EINTR) {
			return false, err
		}
		if fds[0].Revents&unix.POLLIN != 0 && drain(fd) {
			// The directory went away or was replaced: watch again (or poll until it is back).
			_ = unix.Close(fd)
			fd = -1
		}
	}
}

// drain reads the pending inotify events; true when the watch itself ended.
func drain(fd int) bool {
	var buf [4096]byte
	ended := false
	for {
		n, err := unix.Read(fd, buf[:])
		if n <= 0 || err != nil {
			return ended
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			// struct inotify_event: wd int32, mask uint32, cookie uint32, len uint32, name[len].
			mask := binary.NativeEndian.Uint32(buf[off+4:])
			nameLen := int(binary.NativeEndian.Uint32(buf[off+12:]))
			if mask&(unix.IN_IGNORED|unix.IN_DELETE_SELF|unix.IN_MOVE_SELF) != 0 {
				ended = true
			}
			off += unix.SizeofInotifyEvent + nameLen
		}
	}
}
