// Package config resolves command-line flags from, in order of precedence,
// the command line, the environment and the TOML file config.toml in the
// node's data dir, falling back to the flag defaults.
//
// The mapping is generic, so every cobra command gets it just by declaring
// flags. The environment variable of a flag is MYST_ followed by the flag
// name upper-cased with '.' and '-' replaced by '_' (--tequilapi.port is
// MYST_TEQUILAPI_PORT, --log-level is MYST_LOG_LEVEL). In the file the key
// is the flag name, where a dot is a table boundary, so both of these set
// --tequilapi.port:
//
//	[tequilapi]
//	port = 4050
//
//	"tequilapi.port" = 4050
//
// Arrays set list flags. A key that is no flag of any myst command is an
// error, so typos do not pass silently. --data-dir is special: it locates
// the file, so it comes from the flag or MYST_DATA_DIR only.
package config
