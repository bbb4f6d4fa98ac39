-- connect-routed.lua: wrk script posting kv.v1.KVService/Get through a
-- host's router: path and identity from the environment (bench-platform.sh).
-- SPDX-License-Identifier: LGPL-2.1-or-later
wrk.method = "POST"
local path = os.getenv("ROUTE_PATH")
wrk.path = (path and path ~= "") and path or "/kv.v1.KVService/Get"
wrk.headers["Content-Type"] = "application/proto"
wrk.headers["Connect-Protocol-Version"] = "1"
local id = os.getenv("ROUTE_ID")
if id and id ~= "" then
  wrk.headers["X-Plugin-Runtime-ID"] = id
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("ROUTE_TOKEN")
end
wrk.body = "\010\005hello"
