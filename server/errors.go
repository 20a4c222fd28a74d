package server

import (
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"

	"mcptower/internal/errs"
)

// Server error codes (JSON-RPC implementation-defined range).
const (
	codeUnavailable int64 = -32001
	codeInternal    int64 = jsonrpc.CodeInternalError
)

// rpcError translates a domain error into a JSON-RPC error for protocol
// methods other than tools/call (where failures are isError results).
func rpcError(err error) error {
	code := codeInternal
	switch errs.CodeOf(err) {
	case errs.NotFound, errs.Invalid:
		code = jsonrpc.CodeInvalidParams
	case errs.Unavailable, errs.Timeout, errs.RateLimited:
		code = codeUnavailable
	}
	return &jsonrpc.Error{Code: code, Message: err.Error()}
}
