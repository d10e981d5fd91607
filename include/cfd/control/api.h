// The management API (HTTP/1.1 + JSON, bearer token), as a pure request -> response function
// over the store, so that it is tested without sockets; src/control/control.cc serves it on
// --api-listen from the control thread (the store's only thread). Endpoints (the CLI is written
// against exactly these):
//   POST   /v1/tunnels {"name"}                 201 {id,name,account_tag,secret,created_at}
//   GET    /v1/tunnels[?include_deleted=1]       200 [{id,name,created_at,deleted_at,connections}]
//   GET    /v1/tunnels/{id|name}                 200 {id,name,created_at,connectors:[...]}
//   GET    /v1/tunnels/{id|name}/token           200 {token}
//   DELETE /v1/tunnels/{id|name}[?force=1]       204 | 409 while connections are live
//   GET    /v1/tunnels/{id|name}/connections     200 [{id,connector_id,index,location,...}]
//   DELETE /v1/tunnels/{id|name}/connections[?connector_id=UUID]   200 {removed}
//   POST   /v1/routes {"hostname","tunnel","overwrite"}            201 {hostname,tunnel_id}
//   GET    /v1/routes                            200 [{hostname,tunnel_id}]
//   DELETE /v1/routes/{hostname}                 204 | 404
// Errors are {"error":"message"}; a missing or wrong `Authorization: Bearer <token>` is 401.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cfd/store/store.h"

namespace cfd::control {

struct ApiRequest {
    std::string_view method;
    std::string_view target;         // path and query
    std::string_view authorization;  // the header's value
    std::string_view body;
};

struct ApiResponse {
    int status = 200;
    std::string body;  // JSON; empty for 204
};

class Api {
public:
    Api(store::Store& store, std::string token) : store_(store), token_(std::move(token)) {}
    ApiResponse handle(const ApiRequest& req);

    // The account tag of this store: the one its tunnels carry, or a new random one.
    std::string account_tag();

private:
    ApiResponse route(const ApiRequest& req);
    store::Store& store_;
    std::string token_;
    std::string account_tag_;
};

// "2021-03-26T19:29:34.291328Z"
std::string rfc3339_micros(store::Micros t);
// The credentials token of cloudflared: base64 of {"a":tag,"s":base64 secret,"t":uuid}.
std::string tunnel_token(const store::Tunnel& t);

}  // namespace cfd::control
