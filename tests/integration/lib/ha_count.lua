-- wrk script for the ha_*.sh tests: counts every response by status and by body (the origins
-- of those tests answer a short body naming the replica that served), and prints one line
--   WRKRESULT requests=N status_200=N ... body_A=N ... err_connect=N err_read=N err_write=N err_timeout=N err_status=N
-- that lib/ha.sh parses. Each connection waits WRK_DELAY_MS (env, default 2) between requests,
-- so that the load stays modest on a small shared machine. WRK_POST_BYTES (env) makes every
-- request a POST with a body of that many bytes.
local threads = {}
local delay_ms = tonumber(os.getenv("WRK_DELAY_MS") or "2")
local post_bytes = tonumber(os.getenv("WRK_POST_BYTES") or "0")
if post_bytes > 0 then
    wrk.method = "POST"
    wrk.body = string.rep("p", post_bytes)
    wrk.headers["Content-Type"] = "application/octet-stream"
end

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    statuses = {}
    bodies = {}
end

function delay()
    return delay_ms
end

function response(status, headers, body)
    local s = tostring(status)
    statuses[s] = (statuses[s] or 0) + 1
    local b = (body or ""):gsub("[^%w_-]", "")
    if #b > 40 then b = b:sub(1, 40) end
    if b == "" then b = "EMPTY" end
    bodies[b] = (bodies[b] or 0) + 1
end

function done(summary, latency, requests)
    local st, bo = {}, {}
    for _, t in ipairs(threads) do
        for k, v in pairs(t:get("statuses") or {}) do st[k] = (st[k] or 0) + v end
        for k, v in pairs(t:get("bodies") or {}) do bo[k] = (bo[k] or 0) + v end
    end
    local out = { "WRKRESULT", "requests=" .. summary.requests }
    for k, v in pairs(st) do table.insert(out, "status_" .. k .. "=" .. v) end
    for k, v in pairs(bo) do table.insert(out, "body_" .. k .. "=" .. v) end
    local e = summary.errors
    table.insert(out, "err_connect=" .. e.connect)
    table.insert(out, "err_read=" .. e.read)
    table.insert(out, "err_write=" .. e.write)
    table.insert(out, "err_timeout=" .. e.timeout)
    table.insert(out, "err_status=" .. e.status)
    io.write(table.concat(out, " ") .. "\n")
end
