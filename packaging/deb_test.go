package packaging

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openmyst/openmyst/internal/testenv"
)

const testVersion = "1.2.3~test"

// buildDeb runs scripts/deb.sh into a temp dir and returns the .deb path.
func buildDeb(t *testing.T) string {
	t.Helper()
	testenv.RequireTools(t, "dpkg-deb", "bash")
	out := t.TempDir()
	cmd := exec.Command("bash", "../scripts/deb.sh", out)
	cmd.Env = append(os.Environ(), "MYST_DEB_VERSION="+testVersion)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/deb.sh: %v\n%s", err, stderr.String())
	}
	deb := strings.TrimSpace(string(b))
	if filepath.Dir(deb) != out || !strings.HasSuffix(deb, ".deb") {
		t.Fatalf("scripts/deb.sh printed %q, want a .deb in %s", deb, out)
	}
	return deb
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	b, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, b)
	}
	return string(b)
}

// TestDeb builds the .deb and checks its control data, file list and
// modes, runs the extracted binary (version, then the daemon on loopback
// with a password file made like the postinst makes it), and verifies the
// unit with systemd-analyze.
func TestDeb(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the myst binary and the .deb")
	}
	deb := buildDeb(t)

	info := run(t, "dpkg-deb", "--info", deb)
	for _, want := range []string{
		"Package: openmyst", "Version: " + testVersion, "Depends: adduser, iproute2, nftables",
		" postinst ", " prerm ", " postrm ", " conffiles ",
	} {
		if !strings.Contains(info, want) {
			t.Errorf("dpkg-deb --info lacks %q:\n%s", want, info)
		}
	}
	conffiles := run(t, "dpkg-deb", "--info", deb, "conffiles")
	for _, want := range []string{"/etc/openmyst/config.toml", "/etc/openmyst/openmyst.env"} {
		if !strings.Contains(conffiles, want) {
			t.Errorf("conffiles lacks %s:\n%s", want, conffiles)
		}
	}
	contents := run(t, "dpkg-deb", "--contents", deb)
	for _, re := range []string{
		`(?m)^-rwxr-xr-x root/root .* \./usr/bin/myst$`,
		`(?m)^-rw-r--r-- root/root .* \./usr/lib/systemd/system/openmyst\.service$`,
		`(?m)^-rw-r--r-- root/root .* \./etc/openmyst/config\.toml$`,
	} {
		if !regexp.MustCompile(re).MatchString(contents) {
			t.Errorf("dpkg-deb --contents does not match %s:\n%s", re, contents)
		}
	}
	if strings.Contains(contents, "tequilapi.password") || strings.Contains(contents, "/var/lib/openmyst") {
		t.Errorf("the package ships data-dir files (the password must be made per host):\n%s", contents)
	}

	root := t.TempDir()
	run(t, "dpkg-deb", "-x", deb, root)
	myst := filepath.Join(root, "usr/bin/myst")
	if v := strings.TrimSpace(run(t, myst, "version")); !strings.HasPrefix(v, testVersion) {
		t.Errorf("packaged myst version = %q, want %s", v, testVersion)
	}
	unit, err := os.ReadFile(filepath.Join(root, "usr/lib/systemd/system/openmyst.service"))
	if err != nil {
		t.Fatal(err)
	}
	checkUnit(t, string(unit))
	dd := t.TempDir()
	pw := genPassword(t)
	if err := os.WriteFile(filepath.Join(dd, "tequilapi.password"), []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	runPackagedDaemon(t, myst, dd, pw, nil)
	checkEntrypoint(t, myst)

	testenv.RequireTools(t, "systemd-analyze")
	// verify checks that ExecStart's binary exists: point it at the
	// extracted one, leave every other line as shipped.
	vu := filepath.Join(t.TempDir(), "openmyst.service")
	if err := os.WriteFile(vu, bytes.ReplaceAll(unit, []byte("/usr/bin/myst"), []byte(myst)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", vu).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		// Unknown or misspelt keys only warn (exit 0): any output fails.
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// runPackagedDaemon starts myst daemon on loopback with data dir dd
// (holding the password file with pw, made as the postinst makes it), as
// cred's user if not nil, logs in with pw, checks the password is never
// printed, and stops the daemon with SIGTERM.
func runPackagedDaemon(t *testing.T, myst, dd, pw string, cred *syscall.Credential) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, myst, "--data-dir", dd, "--tequilapi.port", "0", "daemon",
		"--p2p.listen", "/ip4/127.0.0.1/tcp/0", "--p2p.nat=false")
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Env = append(os.Environ(), "HOME="+dd)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 256)
	var all bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			all.WriteString(sc.Text() + "\n")
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	stopped := false
	defer func() {
		if !stopped {
			_ = cmd.Process.Kill()
			<-done
			_ = cmd.Wait()
		}
	}()
	addr := regexp.MustCompile(`tequilapi=http://(127\.0\.0\.1:\d+)`)
	var base string
	for base == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				<-done
				t.Fatalf("daemon exited before it started:\n%s", all.String())
			}
			if m := addr.FindStringSubmatch(l); m != nil && strings.Contains(l, "node started") {
				base = "http://" + m[1]
			}
		case <-ctx.Done():
			t.Fatalf("no \"node started\" line:\n%s", all.String())
		}
	}
	login := func(password string) int {
		body, _ := json.Marshal(map[string]string{"username": "myst", "password": password})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/auth/login", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := login(pw); c != http.StatusOK {
		t.Errorf("login with the postinst-made password: HTTP %d, want 200", c)
	}
	if c := login(pw + "x"); c != http.StatusUnauthorized {
		t.Errorf("login with a wrong password: HTTP %d, want 401", c)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-done
	err = cmd.Wait()
	stopped = true
	if err != nil {
		t.Errorf("daemon did not exit cleanly on SIGTERM: %v\n%s", err, all.String())
	}
	if strings.Contains(all.String(), pw) {
		t.Errorf("the daemon printed the existing password:\n%s", all.String())
	}
}

// genPassword runs the postinst's password line (the shell pipeline
// between "head -c 18" and ">") and checks its shape: 24 URL-safe base64
// characters.
func genPassword(t *testing.T) string {
	t.Helper()
	script, err := os.ReadFile("deb/postinst")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`head -c 18 /dev/urandom \| [^>]*`).Find(script)
	if m == nil {
		t.Fatal("postinst: password pipeline not found")
	}
	out, err := exec.Command("sh", "-c", string(m)).Output()
	if err != nil {
		t.Fatalf("postinst password pipeline: %v", err)
	}
	pw := string(out)
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{24}$`).MatchString(pw) {
		t.Fatalf("postinst password %q: want 24 URL-safe base64 characters", pw)
	}
	return pw
}

// checkEntrypoint runs the container entry point (its paths pointed at a
// temp data dir and the extracted binary): it must create the password
// file (0600, 24 URL-safe characters) before myst runs, keep an existing
// one, and pass its arguments to myst.
func checkEntrypoint(t *testing.T, myst string) {
	t.Helper()
	src, err := os.ReadFile("docker-entrypoint.sh")
	if err != nil {
		t.Fatal(err)
	}
	dd := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dd, 0o700); err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(src), "/var/lib/openmyst", dd)
	s = strings.ReplaceAll(s, "/usr/bin/myst", myst)
	ep := filepath.Join(t.TempDir(), "entrypoint.sh")
	if err := os.WriteFile(ep, []byte(s), 0o755); err != nil {
		t.Fatal(err)
	}
	if out := run(t, ep, "version"); !strings.HasPrefix(strings.TrimSpace(out), testVersion) {
		t.Errorf("entry point with version: %q", out)
	}
	pf := filepath.Join(dd, "tequilapi.password")
	fi, err := os.Stat(pf)
	if err != nil {
		t.Fatalf("entry point made no password file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("password file mode %v, want 0600", fi.Mode().Perm())
	}
	first, _ := os.ReadFile(pf)
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{24}\n$`).Match(first) {
		t.Errorf("entry point password %q: want 24 URL-safe characters and a newline", first)
	}
	run(t, ep, "version")
	if again, _ := os.ReadFile(pf); !bytes.Equal(again, first) {
		t.Error("entry point replaced an existing password file")
	}
}
