package packaging

import (
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// dockerfileProblems lints a Dockerfile for what this image promises
// (hadolint is not served here): several stages, pinned base images, a
// non-root USER in the final stage, the binary copied from the builder,
// exec-form ENTRYPOINT, apt without recommends and without lists left.
func dockerfileProblems(df string) []string {
	var probs []string
	// Join continuation lines, drop comments.
	var lines []string
	cur := ""
	for _, l := range strings.Split(df, "\n") {
		t := strings.TrimSpace(l)
		if cur == "" && (t == "" || strings.HasPrefix(t, "#")) {
			continue
		}
		if strings.HasSuffix(t, "\\") {
			cur += strings.TrimSuffix(t, "\\") + " "
			continue
		}
		lines = append(lines, cur+t)
		cur = ""
	}
	froms, lastUser, entry := 0, "", ""
	copiedFromBuild := false
	pinned := regexp.MustCompile(`^FROM\s+[a-z0-9./-]+:[0-9][A-Za-z0-9._-]*(\s+AS\s+\w+)?$`)
	pinnedName := regexp.MustCompile(`^FROM\s+[a-z0-9./-]+:[a-z]+[A-Za-z0-9._-]*(\s+AS\s+\w+)?$`)
	for _, l := range lines {
		inst := strings.ToUpper(strings.Fields(l)[0])
		switch inst {
		case "FROM":
			froms++
			lastUser = ""
			if strings.Contains(l, ":latest") || (!pinned.MatchString(l) && !pinnedName.MatchString(l)) {
				probs = append(probs, "unpinned base image: "+l)
			}
		case "USER":
			lastUser = strings.Fields(l)[1]
		case "COPY":
			if strings.Contains(l, "--from=build") && strings.Contains(l, "/usr/bin/myst") {
				copiedFromBuild = true
			}
		case "ADD":
			probs = append(probs, "ADD (use COPY): "+l)
		case "ENTRYPOINT":
			entry = strings.TrimSpace(strings.TrimPrefix(l, strings.Fields(l)[0]))
		case "RUN":
			if strings.Contains(l, "apt-get install") {
				if !strings.Contains(l, "--no-install-recommends") {
					probs = append(probs, "apt-get install without --no-install-recommends")
				}
				if !strings.Contains(l, "rm -rf /var/lib/apt/lists/*") {
					probs = append(probs, "apt lists left in the image")
				}
			}
		}
	}
	if froms < 2 {
		probs = append(probs, "not multi-stage")
	}
	if u := strings.Split(lastUser, ":")[0]; u == "" || u == "root" || u == "0" {
		probs = append(probs, "final stage runs as root (USER "+lastUser+")")
	}
	if !copiedFromBuild {
		probs = append(probs, "final stage does not COPY --from=build the myst binary to /usr/bin/myst")
	}
	var argv []string
	if err := json.Unmarshal([]byte(entry), &argv); err != nil || len(argv) == 0 {
		probs = append(probs, "ENTRYPOINT not in exec (JSON) form: "+entry)
	}
	return probs
}

// TestDockerfile lints the repository's Dockerfile (no docker engine runs
// here, so the image itself is not built by the tests).
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range dockerfileProblems(string(b)) {
		t.Error(p)
	}
	fi, err := os.Stat("docker-entrypoint.sh")
	if err != nil || fi.Mode().Perm()&0o111 == 0 {
		t.Errorf("docker-entrypoint.sh must exist and be executable: %v", err)
	}
}

// TestDockerfileLintCatches: the lint fails root, unpinned and
// single-stage Dockerfiles.
func TestDockerfileLintCatches(t *testing.T) {
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	for name, bad := range map[string]string{
		"root":     strings.Replace(df, "USER openmyst:openmyst", "USER root", 1),
		"latest":   strings.Replace(df, "debian:bookworm-slim", "debian:latest", 1),
		"untagged": strings.Replace(df, "debian:bookworm-slim", "debian", 1),
		"shell":    regexp.MustCompile(`ENTRYPOINT .*`).ReplaceAllString(df, "ENTRYPOINT /usr/local/bin/openmyst-entrypoint"),
	} {
		if bad == df {
			t.Fatalf("%s: mutation did not apply", name)
		}
		if len(dockerfileProblems(bad)) == 0 {
			t.Errorf("lint passed the %s mutation", name)
		}
	}
}

// TestScriptsParse: every shipped shell script parses (sh -n).
func TestScriptsParse(t *testing.T) {
	for _, s := range []string{"deb/postinst", "deb/prerm", "deb/postrm", "docker-entrypoint.sh", "../scripts/deb.sh"} {
		sh := "sh"
		if strings.HasSuffix(s, "deb.sh") {
			sh = "bash"
		}
		if out, err := exec.Command(sh, "-n", s).CombinedOutput(); err != nil {
			t.Errorf("%s -n %s: %v\n%s", sh, s, err, out)
		}
	}
}
