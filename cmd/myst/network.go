package main

import (
	"github.com/openmyst/openmyst/node"
)

// chainDeployment points cfg at the contract deployment: the
// --chain.deployment file when given (flag), else the named network's,
// else <data-dir>/chain/deployment.json.
func (a *app) chainDeployment(cfg *node.ChainConfig, flag string) {
	switch {
	case flag != "":
		cfg.Deployment = flag
	case a.network != nil:
		dep := a.network.Deployment
		cfg.Deployed = &dep
	default:
		cfg.Deployment = a.defaultDeploymentPath()
	}
}
