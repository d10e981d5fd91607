# The registration RPC between a connector and the edge: the part of cloudflared's
# tunnelrpc/proto/tunnelrpc.capnp that cfdtunnel speaks (DESIGN.md §2).
#
# A struct's layout on the wire depends only on the order and types of its fields, so every
# field below keeps cloudflared's ordinal and type. Struct type ids never travel; the interface
# id and the method ordinals do, and must stay exactly as they are.
@0xc71dd5aed1b05e01;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("cfd::rpc::schema");

struct TunnelAuth {
    accountTag @0 :Text;
    tunnelSecret @1 :Data;
}

struct ClientInfo {
    clientId @0 :Data;          # the connector ID, a 16-byte UUID
    features @1 :List(Text);
    version @2 :Text;
    arch @3 :Text;              # e.g. "linux_amd64"
}

struct ConnectionOptions {
    client @0 :ClientInfo;
    originLocalIp @1 :Data;     # 4 or 16 bytes, as Go's net.IP
    replaceExisting @2 :Bool;
    compressionQuality @3 :UInt8;
    numPreviousAttempts @4 :UInt8;
}

struct ConnectionError {
    cause @0 :Text;
    retryAfter @1 :Int64;       # nanoseconds
    shouldRetry @2 :Bool;
}

struct ConnectionDetails {
    uuid @0 :Data;              # the connection's ID, 16 bytes
    locationName @1 :Text;
    tunnelIsRemotelyManaged @2 :Bool;
}

struct ConnectionResponse {
    result :union {
        error @0 :ConnectionError;
        connectionDetails @1 :ConnectionDetails;
    }
}

interface RegistrationServer @0xf71695ec7fe85497 {
    registerConnection @0 (auth :TunnelAuth, tunnelId :Data, connIndex :UInt8,
                           options :ConnectionOptions) -> (result :ConnectionResponse);
    unregisterConnection @1 () -> ();
    updateLocalConfiguration @2 (config :Data) -> ();
}
