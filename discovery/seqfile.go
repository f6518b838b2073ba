package discovery

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/internal/atomicfile"
)

// SeqStore keeps an announcer's last used sequence number across restarts,
// so a provider whose clock went back never signs two different proposals
// with the same sequence number (which any peer would rightly publish as a
// fraud proof against it).
type SeqStore interface {
	// LoadSeq returns the last saved sequence number, 0 if none.
	LoadSeq() (uint64, error)
	// SaveSeq durably records seq before it is announced.
	SaveSeq(seq uint64) error
}

// SeqFile is a SeqStore in one small file, written atomically and fsynced.
type SeqFile string

// SeqFileFor is the SeqFile of identity provider under dataDir.
func SeqFileFor(dataDir string, provider common.Address) SeqFile {
	return SeqFile(filepath.Join(dataDir, "announce-seq-"+strings.ToLower(provider.Hex())))
}

// LoadSeq implements SeqStore; a missing file is 0.
func (f SeqFile) LoadSeq() (uint64, error) {
	raw, err := os.ReadFile(string(f))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("discovery: announce seq: %w", err)
	}
	seq, err := strconv.ParseUint(strings.TrimSpace(string(raw)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("discovery: announce seq file %s is corrupt (delete it only if the clock is right): %w", string(f), err)
	}
	return seq, nil
}

// SaveSeq implements SeqStore.
func (f SeqFile) SaveSeq(seq uint64) error {
	if err := atomicfile.Write(string(f), []byte(strconv.FormatUint(seq, 10)+"\n"), 0o600); err != nil {
		return fmt.Errorf("discovery: save announce seq: %w", err)
	}
	return nil
}
