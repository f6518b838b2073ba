package config

import (
	"fmt"
	"os"
	"strings"
)

// ReadSecretFile reads a one-line secret (an identity passphrase, the
// Tequilapi password) from path: a trailing newline is removed and an
// empty secret is an error. what names the secret in errors
// ("passphrase", "password").
func ReadSecretFile(path, what string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read %s file: %w", what, err)
	}
	s := strings.TrimRight(string(data), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s file %s is empty", what, path)
	}
	return s, nil
}
