package api

// The API's paths. Identity paths end in a 0x-hex address.
const (
	// PathExchange takes a consumer's exchange message (POST) and answers
	// an ExchangeResponse.
	PathExchange = "/v1/exchange"
	// PathReveal takes a RevealRequest (POST) and answers a RevealResponse.
	PathReveal = "/v1/reveal"
	// PathConsumers is the prefix of GET /v1/consumers/{identity}.
	PathConsumers = "/v1/consumers/"
	// PathProviders is the prefix of GET /v1/providers/{identity}, which
	// answers a ProviderResponse.
	PathProviders = "/v1/providers/"
	// PathInfo answers an Info (GET).
	PathInfo = "/v1/info"
	// PathHealth answers {"status":"ok"} (GET).
	PathHealth = "/healthz"
	// PathOpenAPI serves the OpenAPI document (GET).
	PathOpenAPI = "/openapi.json"
)

// ContentType is the media type of every request and response body.
const ContentType = "application/json"
