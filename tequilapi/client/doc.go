// Package client is a typed Go client for Tequilapi, the node's REST API.
// Failures the server reports come back as *Error with the server's code,
// message and field errors.
package client
