package packaging

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/openmyst/openmyst/internal/testenv"
)

// InstallEnv opts in to TestDebInstall, which installs the package into
// this machine with dpkg -i and purges it afterwards. .ci/run sets it on
// the throwaway CI machine; never set it on a machine you keep.
const InstallEnv = "OPENMYST_CI_INSTALL_DEB"

// TestDebInstall installs the .deb with dpkg -i on a clean state (no
// openmyst package or user before), checks what the postinst made (user,
// data dir 0700, password file 0600, config link), starts the installed
// binary as the openmyst user on loopback and logs in with the generated
// password, then purges the package and checks user and data are gone.
func TestDebInstall(t *testing.T) {
	if os.Getenv(InstallEnv) != "1" {
		// testenv:skip-ok: opt-in, it changes the host (dpkg -i); CI sets it.
		t.Skip("set " + InstallEnv + "=1 to install the package into this machine (CI does)")
	}
	testenv.RequireRoot(t)
	testenv.RequireTools(t, "dpkg", "dpkg-deb", "getent")
	if exec.Command("dpkg", "-s", "openmyst").Run() == nil {
		t.Fatal("package openmyst is already installed: the install test needs a clean state")
	}
	if _, err := user.Lookup("openmyst"); err == nil {
		t.Fatal("user openmyst already exists: the install test needs a clean state")
	}
	deb := buildDeb(t)
	if out, err := exec.Command("dpkg", "-i", deb).CombinedOutput(); err != nil {
		_ = exec.Command("dpkg", "--purge", "openmyst").Run()
		t.Fatalf("dpkg -i: %v\n%s", err, out)
	}
	purged := false
	t.Cleanup(func() {
		if !purged {
			_ = exec.Command("dpkg", "--purge", "openmyst").Run()
		}
	})

	u, err := user.Lookup("openmyst")
	if err != nil {
		t.Fatalf("postinst made no user openmyst: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if uid == 0 || uid >= 1000 {
		t.Errorf("openmyst uid %d: want a system user", uid)
	}
	if pw, _ := exec.Command("getent", "passwd", "openmyst").Output(); !strings.Contains(string(pw), "nologin") {
		t.Errorf("openmyst has a login shell: %s", pw)
	}
	stat := func(p string) (os.FileMode, int) {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatalf("postinst: %v", err)
		}
		return fi.Mode(), int(fi.Sys().(*syscall.Stat_t).Uid)
	}
	const dd = "/var/lib/openmyst"
	if m, o := stat(dd); m.Perm() != 0o700 || o != uid {
		t.Errorf("%s: mode %v owner %d, want 0700 owned by openmyst (%d)", dd, m, o, uid)
	}
	pwFile := filepath.Join(dd, "tequilapi.password")
	if m, o := stat(pwFile); m.Perm() != 0o600 || o != uid {
		t.Errorf("%s: mode %v owner %d, want 0600 owned by openmyst", pwFile, m, o)
	}
	if l, err := os.Readlink(filepath.Join(dd, "config.toml")); err != nil || l != "/etc/openmyst/config.toml" {
		t.Errorf("config link: %q, %v; want -> /etc/openmyst/config.toml", l, err)
	}
	b, err := os.ReadFile(pwFile)
	if err != nil {
		t.Fatal(err)
	}
	pw := strings.TrimSpace(string(b))
	if len(pw) != 24 {
		t.Errorf("generated password has %d characters, want 24", len(pw))
	}
	runPackagedDaemon(t, "/usr/bin/myst", dd, pw, &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)})

	if out, err := exec.Command("dpkg", "--purge", "openmyst").CombinedOutput(); err != nil {
		t.Fatalf("dpkg --purge: %v\n%s", err, out)
	}
	purged = true
	for _, p := range []string{"/usr/bin/myst", dd, "/etc/openmyst", "/usr/lib/systemd/system/openmyst.service"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s left after purge", p)
		}
	}
	if _, err := user.Lookup("openmyst"); err == nil {
		t.Error("user openmyst left after purge")
	}
}
