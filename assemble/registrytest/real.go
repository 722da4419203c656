package registrytest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// LookPath is the path of the program file, looked up in PATH. When it is
// not installed the test is skipped, or fails under CI (CI set), where
// .ci/run installs every program the tests use.
func LookPath(t testing.TB, file string) string {
	t.Helper()
	p, err := exec.LookPath(file)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed; .ci/run installs it", file)
		}
		t.Skipf("%s is not installed (its Debian package has it)", file)
	}
	return p
}

// RealRegistry starts Debian's docker-registry (CNCF distribution 2.x as
// its own process) on a free 127.0.0.1 port with filesystem storage in a
// temporary directory, plain HTTP and no auth, and returns its host:port.
// It is killed and waited for in t's Cleanup. Without the program the test
// is skipped (see LookPath).
func RealRegistry(t testing.TB) string {
	t.Helper()
	bin := LookPath(t, "docker-registry")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), addr)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	var out Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := client.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			client.CloseIdleConnections()
			return addr
		}
		select {
		case werr := <-exited:
			exited <- werr // for the Cleanup
			t.Fatalf("docker-registry exited before serving on %s: %v\n%s", addr, werr, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry did not start on %s: %v\n%s", addr, err, out.String())
		}
	}
}
