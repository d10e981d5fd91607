// Private to src/tls: the one place wolfSSL's headers come in, in the order wolfSSL requires
// (options.h first, so that every header sees the build's feature macros).
#pragma once

// clang-format off
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfio.h>
#include <wolfssl/error-ssl.h>
// clang-format on

#include "cfd/core/result.h"

namespace cfd::tls {

// wolfSSL_Init, once per process, from whichever thread gets here first.
void ensure_init();

// An Errc::Tls error carrying wolfSSL's code.
inline Error tls_error(int code, const char* op) { return Error{Errc::Tls, code, op}; }

}  // namespace cfd::tls
