// The CLI's client of an edge's management API: blocking HTTP/1.1 + JSON over one short TCP
// connection per call (the CLI is not on the data path). Errors are sentences for the user.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cfd/core/json.h"
#include "cfd/core/result.h"

namespace cfd::cli {

struct ApiEndpoint {
    std::string url;  // as given, for messages
    std::string host;
    uint16_t port = 7845;
    std::string token;
};

struct ApiResponse {
    int status = 0;
    json::Value body;  // null when the body was empty

    bool ok() const { return status >= 200 && status < 300; }
    // The API's {"error": "..."} text, or "HTTP <status>".
    std::string error_text() const;
};

// "http://127.0.0.1:7845" (or "127.0.0.1:7845"); only plain HTTP: the API listens on loopback
// by default.
Result<ApiEndpoint, std::string> parse_api_url(std::string_view url);

// Finds the API: flags first, then CFDTUNNEL_API / CFDTUNNEL_API_TOKEN, then ~/.cfdtunnel/cli.ini
// ([cli] api = ..., token = ...) as written by `cfdtunnel login`.
Result<ApiEndpoint, std::string> find_api(const std::string& flag_api,
                                          const std::string& flag_token);

// `body` may be null (no request body).
Result<ApiResponse, std::string> api_call(const ApiEndpoint& api, std::string_view method,
                                          std::string_view path, const json::Value* body);

// Percent-encodes one path segment (tunnel names, hostnames).
std::string path_escape(std::string_view segment);

std::string home_dir();

}  // namespace cfd::cli
