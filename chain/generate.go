package chain

// Regenerate the contract artifacts and Go bindings: npm ci (once), solc via
// contracts/compile.js, then abigen at the go.mod version of go-ethereum.
//go:generate sh -c "test -d ../contracts/node_modules || npm ci --prefix ../contracts --no-audit --no-fund"
//go:generate node ../contracts/compile.js
//go:generate go run github.com/ethereum/go-ethereum/cmd/abigen --abi ../contracts/build/MystToken.abi --bin ../contracts/build/MystToken.bin --pkg bindings --type MystToken --out bindings/mysttoken.go
//go:generate go run github.com/ethereum/go-ethereum/cmd/abigen --abi ../contracts/build/Registry.abi --bin ../contracts/build/Registry.bin --pkg bindings --type Registry --out bindings/registry.go
//go:generate go run github.com/ethereum/go-ethereum/cmd/abigen --abi ../contracts/build/ConsumerChannel.abi --pkg bindings --type ConsumerChannel --out bindings/consumerchannel.go
//go:generate go run github.com/ethereum/go-ethereum/cmd/abigen --abi ../contracts/build/Hermes.abi --pkg bindings --type Hermes --out bindings/hermes.go
