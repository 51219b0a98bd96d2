package server

import (
	_ "embed"
	"net/http"
)

// openapiYAML is openapi.yaml, the OpenAPI 3.1 document of the HTTP API the
// Handler serves, served at GET /openapi.yaml. Tests validate the server's
// real requests and responses against it.
//
//go:embed openapi.yaml
var openapiYAML []byte

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml") // RFC 9512
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(openapiYAML)
}
