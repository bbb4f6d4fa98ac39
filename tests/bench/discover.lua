-- discover.lua: wrk script posting DiscoverService{service_type: T} as the
-- plugin CP_ID with runtime token CP_TOKEN; T is CP_SERVICE_TYPE, default
-- "one" (what a host started by `bench-registry --serve` has registered).
-- SPDX-License-Identifier: LGPL-2.1-or-later
wrk.method = "POST"
wrk.path = "/connectplugin.v1.ServiceRegistry/DiscoverService"
wrk.headers["Content-Type"] = "application/proto"
wrk.headers["Connect-Protocol-Version"] = "1"
wrk.headers["X-Plugin-Runtime-ID"] = os.getenv("CP_ID")
wrk.headers["Authorization"] = "Bearer " .. os.getenv("CP_TOKEN")
local service_type = os.getenv("CP_SERVICE_TYPE") or "one"
wrk.body = "\010" .. string.char(#service_type) .. service_type

-- Count non-200 answers so a refused call cannot pass for a fast one.
local bad = 0
response = function(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end
done = function(summary, latency, requests)
  io.write(string.format("non-200 answers: %d\n", bad))
end
