package kernel

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
)

// parseListenPort finds listen_port in a UAPI get dump.
func parseListenPort(get string) (uint16, error) {
	sc := bufio.NewScanner(strings.NewReader(get))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "listen_port="); ok {
			n, err := strconv.ParseUint(v, 10, 16)
			if err != nil {
				return 0, fmt.Errorf("uapi listen_port %q: %w", v, err)
			}
			return uint16(n), nil
		}
	}
	return 0, fmt.Errorf("uapi get: no listen_port")
}
