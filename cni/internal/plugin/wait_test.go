package plugin

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWaitForFileAlreadyThere(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if ok, err := WaitForFile(path, time.Second); !ok || err != nil {
		t.Errorf("got %v %v", ok, err)
	}
}

func TestWaitForFileTimesOut(t *testing.T) {
	start := time.Now()
	ok, err := WaitForFile(filepath.Join(t.TempDir(), "never"), 150*time.Millisecond)
	if ok || err != nil {
		t.Errorf("got %v %v", ok, err)
	}
	if e := time.Since(start); e < 150*time.Millisecond {
		t.Errorf("returned after %s, before the timeout", e)
	}
}

// The marker appears while waiting, in a directory that did not exist when the wait began (the agent
// creates endpoints/ with its first marker): the wait returns true, well before its timeout.
func TestWaitForFileSeesCreation(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "endpoints")
	path := filepath.Join(dir, "sy0123456789ab")
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(100 * time.Millisecond) // the writer side of the test: the wait below must block meanwhile
		_ = os.MkdirAll(dir, 0o700)
		tmp := path + ".tmp"
		_ = os.WriteFile(tmp, nil, 0o600)
		_ = os.Rename(tmp, path)
	}()
	start := time.Now()
	ok, err := WaitForFile(path, 10*time.Second)
	<-done
	if !ok || err != nil {
		t.Fatalf("got %v %v", ok, err)
	}
	if e := time.Since(start); e < 100*time.Millisecond || e > 5*time.Second {
		t.Errorf("returned after %s", e)
	}
}
