// A real OpenID provider for the identity tests: panva/oidc-provider (OpenID certified),
// issuing client-credentials access tokens as RS256 JWTs for the gateway's audience.
// Usage: node provider.mjs CONFIG.json   where CONFIG.json holds
//   {"port": 0, "issuer": "http://127.0.0.1:PORT", "audience": "demigod", "resource": "urn:...",
//    "jwks": {"keys": [private JWKs; the first one signs]},
//    "clients": [{"client_id": "...", "client_secret": "...", "tenant": "acme"}]}
import { readFileSync } from "node:fs";
import Provider from "oidc-provider";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const SCOPES = config.scopes ?? "model:tiny model:*";

const provider = new Provider(config.issuer, {
  jwks: config.jwks,
  clients: config.clients.map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    tenant: c.tenant,
    grant_types: ["client_credentials"],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: "client_secret_post",
  })),
  extraClientMetadata: { properties: ["tenant"] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => config.resource,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: SCOPES,
        audience: config.audience,
        accessTokenTTL: 300,
        accessTokenFormat: "jwt",
        jwt: { sign: { alg: "RS256" } },
      }),
    },
  },
  extraTokenClaims: (ctx, token) => {
    const tenant = token.client?.tenant;
    return tenant ? { tenant } : undefined;
  },
});

provider.on("server_error", (ctx, err) => console.error("server_error", err));
const server = provider.listen(config.port, "127.0.0.1", () => {
  console.log(`oidc-provider listening on ${config.issuer}`);
});
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
