package tequilapi

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/openmyst/openmyst/identity"
)

// IdentityService is what the identity routes need; *identity.Manager
// implements it.
type IdentityService interface {
	// List returns all identities.
	List(ctx context.Context) ([]identity.Identity, error)
	// Get returns one identity (identity.ErrNotFound if unknown).
	Get(ctx context.Context, addr common.Address) (identity.Identity, error)
	// New creates an identity.
	New(ctx context.Context, passphrase string) (identity.Identity, error)
	// SetDefault makes addr the default identity.
	SetDefault(ctx context.Context, addr common.Address) error
	// Unlock decrypts the key of addr.
	Unlock(addr common.Address, passphrase string) error
	// Signer signs as addr while it is unlocked.
	Signer(addr common.Address) (identity.Signer, error)
}

// IdentityDTO describes one identity.
type IdentityDTO struct {
	// ID is the 0x address.
	ID string `json:"id" doc:"0x address"`
	// Unlocked reports whether the node can sign with it.
	Unlocked bool `json:"unlocked"`
	// Default reports whether it is the node's default identity.
	Default bool `json:"default"`
}

// Line is the identity as `myst identity list` prints it: the address, a
// tab and its flags (default, unlocked) comma separated.
func (d IdentityDTO) Line() string {
	var tags []string
	if d.Default {
		tags = append(tags, "default")
	}
	if d.Unlocked {
		tags = append(tags, "unlocked")
	}
	return d.ID + "\t" + strings.Join(tags, ",")
}

// IdentityListResponse is the answer of GET /identities.
type IdentityListResponse struct {
	// Identities are sorted by address.
	Identities []IdentityDTO `json:"identities"`
}

// CreateIdentityRequest is the body of POST /identities.
type CreateIdentityRequest struct {
	// Passphrase encrypts the key.
	Passphrase string `json:"passphrase" doc:"encrypts the key; must not be empty"`
	// SetDefault makes it the default identity.
	SetDefault bool `json:"set_default,omitempty" doc:"make it the default identity"`
}

// Validate implements Validator.
func (r *CreateIdentityRequest) Validate() error {
	if r.Passphrase == "" {
		return FieldError("passphrase", "must not be empty")
	}
	return nil
}

// UnlockRequest is the body of PUT /identities/{id}/unlock.
type UnlockRequest struct {
	// Passphrase decrypts the key.
	Passphrase string `json:"passphrase"`
}

// SignRequest is the body of POST /identities/{id}/sign.
type SignRequest struct {
	// Message is signed as UTF-8 bytes with the EIP-191 prefix.
	Message string `json:"message" doc:"UTF-8 text, signed with the Ethereum signed-message prefix"`
}

// SignResponse is the answer of POST /identities/{id}/sign.
type SignResponse struct {
	// ID is the signer.
	ID string `json:"id"`
	// Signature is 0x hex of 65 bytes r||s||v.
	Signature string `json:"signature" doc:"0x hex, 65 bytes r||s||v, v in {27,28}"`
}

func identityDTO(id identity.Identity) IdentityDTO {
	return IdentityDTO{ID: id.Address.Hex(), Unlocked: id.Unlocked, Default: id.Default}
}

// identityError maps identity errors to API errors.
func identityError(err error) error {
	switch {
	case errors.Is(err, identity.ErrNotFound):
		return NewError(http.StatusNotFound, CodeNotFound, err.Error())
	case errors.Is(err, identity.ErrWrongPassphrase):
		return &APIError{Status: http.StatusForbidden, Body: ErrorBody{Code: "wrong_passphrase", Message: err.Error(), Fields: map[string]string{"passphrase": "wrong passphrase"}}}
	case errors.Is(err, identity.ErrLocked):
		return NewError(http.StatusConflict, "identity_locked", err.Error()+": unlock it first with PUT /identities/{id}/unlock")
	case errors.Is(err, identity.ErrEmptyPassphrase):
		return FieldError("passphrase", "must not be empty")
	case errors.Is(err, identity.ErrExists):
		return NewError(http.StatusConflict, CodeConflict, err.Error())
	case errors.Is(err, identity.ErrCorruptKeyFile):
		return NewError(http.StatusInternalServerError, "keystore_corrupt", err.Error())
	}
	return err
}

func pathIdentity(r *http.Request) (common.Address, error) {
	addr, err := identity.ParseAddress(r.PathValue("id"))
	if err != nil {
		return common.Address{}, &APIError{Status: http.StatusBadRequest, Body: ErrorBody{
			Code: CodeValidation, Message: err.Error(), Fields: map[string]string{"id": "want 0x followed by 40 hex digits"},
		}}
	}
	return addr, nil
}

// pathIdentityAndBody is pathIdentity, then DecodeJSON of the body into
// v (the body is not read when the path is bad).
func pathIdentityAndBody(r *http.Request, v any) (common.Address, error) {
	addr, err := pathIdentity(r)
	if err != nil {
		return common.Address{}, err
	}
	return addr, DecodeJSON(r, v)
}

// Identities manages the identities of a keystore. It is the one
// implementation behind the identity routes (IdentityRoutes) and behind
// `myst identity` when no daemon runs. Its methods have the signatures of
// the Go client's (tequilapi/client), so a caller can use either. Errors
// are the keystore's (the routes map them with identityError).
type Identities struct {
	// IDs is the keystore.
	IDs IdentityService
}

// Identities lists the identities (GET /identities).
func (s *Identities) Identities(ctx context.Context) ([]IdentityDTO, error) {
	ids, err := s.IDs.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]IdentityDTO, 0, len(ids))
	for _, id := range ids {
		out = append(out, identityDTO(id))
	}
	return out, nil
}

// CreateIdentity creates an identity, the default one if setDefault
// (POST /identities).
func (s *Identities) CreateIdentity(ctx context.Context, passphrase string, setDefault bool) (IdentityDTO, error) {
	id, err := s.IDs.New(ctx, passphrase)
	if err != nil {
		return IdentityDTO{}, err
	}
	if setDefault && !id.Default {
		if err := s.IDs.SetDefault(ctx, id.Address); err != nil {
			return IdentityDTO{}, err
		}
		id.Default = true
	}
	return identityDTO(id), nil
}

// Identity returns one identity (GET /identities/{id}).
func (s *Identities) Identity(ctx context.Context, addr common.Address) (IdentityDTO, error) {
	id, err := s.IDs.Get(ctx, addr)
	if err != nil {
		return IdentityDTO{}, err
	}
	return identityDTO(id), nil
}

// SetDefault makes addr the default identity (PUT /identities/{id}/default).
func (s *Identities) SetDefault(ctx context.Context, addr common.Address) (IdentityDTO, error) {
	if err := s.IDs.SetDefault(ctx, addr); err != nil {
		return IdentityDTO{}, err
	}
	return s.Identity(ctx, addr)
}

// Unlock decrypts addr's key (PUT /identities/{id}/unlock).
func (s *Identities) Unlock(ctx context.Context, addr common.Address, passphrase string) (IdentityDTO, error) {
	if err := s.IDs.Unlock(addr, passphrase); err != nil {
		return IdentityDTO{}, err
	}
	return s.Identity(ctx, addr)
}

// Sign signs message (with the Ethereum signed-message prefix) as the
// unlocked identity addr (POST /identities/{id}/sign).
func (s *Identities) Sign(_ context.Context, addr common.Address, message string) ([]byte, error) {
	signer, err := s.IDs.Signer(addr)
	if err != nil {
		return nil, err
	}
	sig, err := signer.Sign([]byte(message))
	if err != nil {
		return nil, err
	}
	return sig, nil
}

// IdentityRoutes returns the /identities routes over svc.
func IdentityRoutes(svc IdentityService, log *slog.Logger) []Route {
	log = cmp.Or(log, slog.Default())
	ids := &Identities{IDs: svc}
	fail := func(w http.ResponseWriter, err error) { WriteError(w, log, identityError(err)) }
	tags := []string{"identities"}
	return []Route{
		{
			Method: http.MethodGet, Path: "/identities",
			Op: Operation{Summary: "List identities", Tags: tags, Response: IdentityListResponse{}},
			Handler: func(w http.ResponseWriter, r *http.Request) {
				list, err := ids.Identities(r.Context())
				respond(w, log, http.StatusOK, IdentityListResponse{Identities: list}, identityError(err))
			},
		},
		{
			Method: http.MethodPost, Path: "/identities",
			Op: Operation{Summary: "Create an identity", Tags: tags, Request: CreateIdentityRequest{}, Response: IdentityDTO{}, Status: http.StatusCreated},
			Handler: func(w http.ResponseWriter, r *http.Request) {
				var req CreateIdentityRequest
				if err := DecodeJSON(r, &req); err != nil {
					fail(w, err)
					return
				}
				id, err := ids.CreateIdentity(r.Context(), req.Passphrase, req.SetDefault)
				if err == nil {
					log.Info("tequilapi: identity created", "id", id.ID)
				}
				respond(w, log, http.StatusCreated, id, identityError(err))
			},
		},
		{
			Method: http.MethodGet, Path: "/identities/{id}",
			Op: Operation{Summary: "Get one identity", Tags: tags, Response: IdentityDTO{}, Errors: []int{http.StatusBadRequest, http.StatusNotFound}},
			Handler: func(w http.ResponseWriter, r *http.Request) {
				addr, err := pathIdentity(r)
				if err != nil {
					fail(w, err)
					return
				}
				id, err := ids.Identity(r.Context(), addr)
				respond(w, log, http.StatusOK, id, identityError(err))
			},
		},
		{
			Method: http.MethodPut, Path: "/identities/{id}/default",
			Op: Operation{Summary: "Make an identity the node's default", Tags: tags, Response: IdentityDTO{},
				Errors: []int{http.StatusBadRequest, http.StatusNotFound}},
			Handler: func(w http.ResponseWriter, r *http.Request) {
				addr, err := pathIdentity(r)
				if err != nil {
					fail(w, err)
					return
				}
				id, err := ids.SetDefault(r.Context(), addr)
				if err == nil {
					log.Info("tequilapi: default identity set", "id", addr.Hex())
				}
				respond(w, log, http.StatusOK, id, identityError(err))
			},
		},
		{
			Method: http.MethodPut, Path: "/identities/{id}/unlock",
			Op: Operation{Summary: "Unlock an identity with its passphrase", Tags: tags, Request: UnlockRequest{}, Response: IdentityDTO{},
				Errors: []int{http.StatusForbidden, http.StatusNotFound}},
			Handler: func(w http.ResponseWriter, r *http.Request) {
				var req UnlockRequest
				addr, err := pathIdentityAndBody(r, &req)
				if err != nil {
					fail(w, err)
					return
				}
				id, err := ids.Unlock(r.Context(), addr, req.Passphrase)
				respond(w, log, http.StatusOK, id, identityError(err))
			},
		},
		{
			Method: http.MethodPost, Path: "/identities/{id}/sign",
			Op: Operation{Summary: "Sign a message with an unlocked identity", Tags: tags, Request: SignRequest{}, Response: SignResponse{},
				Errors: []int{http.StatusNotFound, http.StatusConflict}},
			Handler: func(w http.ResponseWriter, r *http.Request) {
				var req SignRequest
				addr, err := pathIdentityAndBody(r, &req)
				if err != nil {
					fail(w, err)
					return
				}
				sig, err := ids.Sign(r.Context(), addr, req.Message)
				respond(w, log, http.StatusOK, SignResponse{ID: addr.Hex(), Signature: hexutil.Encode(sig)}, identityError(err))
			},
		},
	}
}
