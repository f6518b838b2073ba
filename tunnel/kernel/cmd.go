package kernel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
)

// run runs an administrative command (ip, nft) and returns its stdout; the
// error carries the command line and stderr.
func run(ctx context.Context, stdin string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.String(), nil
}

// ip runs iproute2's ip command.
func ip(ctx context.Context, args ...string) error {
	_, err := run(ctx, "", "ip", args...)
	return err
}

// nftLoad atomically loads a ruleset (one transaction: all or nothing).
func nftLoad(ctx context.Context, ruleset string) error {
	if _, err := run(ctx, ruleset, "nft", "-f", "-"); err != nil {
		return fmt.Errorf("load nftables ruleset: %w", err)
	}
	return nil
}

// removeTable checks table's name and deletes it (family inet) if it
// exists.
func removeTable(ctx context.Context, table string) error {
	if err := validTableName(table); err != nil {
		return err
	}
	return nftDeleteTable(ctx, table)
}

// nftDeleteTable deletes table (family inet) if it exists.
func nftDeleteTable(ctx context.Context, table string) error {
	out, err := run(ctx, "", "nft", "list", "tables", "inet")
	if err != nil {
		return fmt.Errorf("list nftables tables: %w", err)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.TrimSpace(line) == "table inet "+table {
			if _, err := run(ctx, "", "nft", "delete", "table", "inet", table); err != nil {
				return fmt.Errorf("delete nftables table inet %s: %w", table, err)
			}
			return nil
		}
	}
	return nil
}

// sysctl is one /proc/sys setting changed by this package, with the value
// it had before so it can be put back.
type sysctl struct {
	path string
	old  string
}

// setSysctl writes value to /proc/sys/<key> (key with slashes) and returns
// the previous value for restoring; changed is false if it already had it.
func setSysctl(key, value string) (s sysctl, changed bool, err error) {
	path := "/proc/sys/" + key
	old, err := os.ReadFile(path)
	if err != nil {
		return sysctl{}, false, fmt.Errorf("read sysctl %s: %w", key, err)
	}
	s = sysctl{path: path, old: strings.TrimSpace(string(old))}
	if s.old == value {
		return s, false, nil
	}
	if err := os.WriteFile(path, []byte(value+"\n"), 0o644); err != nil {
		return sysctl{}, false, fmt.Errorf("write sysctl %s=%s: %w", key, value, err)
	}
	return s, true, nil
}

func (s sysctl) restore() error {
	err := os.WriteFile(s.path, []byte(s.old+"\n"), 0o644)
	if errors.Is(err, os.ErrNotExist) {
		return nil // the interface is gone, and its setting with it
	}
	if err != nil {
		return fmt.Errorf("restore %s=%s: %w", s.path, s.old, err)
	}
	return nil
}

// linkExists reports whether a network interface called name exists in
// the calling thread's network namespace (netlink, not /sys, which shows
// the namespace sysfs was mounted in).
func linkExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

// checkTools returns an error naming the missing command, if any.
func checkTools(names ...string) error {
	var errs []error
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			errs = append(errs, fmt.Errorf("kernel mode needs the %s command: %w", n, err))
		}
	}
	return errors.Join(errs...)
}

// validIfName checks a Linux interface name (also used inside nft strings).
func validIfName(name string) error {
	if name == "" || len(name) > 15 {
		return fmt.Errorf("interface name %q: want 1-15 characters", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("interface name %q: only letters, digits, '-', '_' and '.' allowed", name)
		}
	}
	return nil
}

// validTableName checks an nftables table name we generate rules for.
func validTableName(name string) error {
	if name == "" || len(name) > 32 {
		return fmt.Errorf("nftables table name %q: want 1-32 characters", name)
	}
	for i, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_' || i > 0 && r >= '0' && r <= '9') {
			return fmt.Errorf("nftables table name %q: only letters, digits and '_' allowed", name)
		}
	}
	return nil
}
