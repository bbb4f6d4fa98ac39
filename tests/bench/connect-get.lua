-- connect-get.lua: wrk script posting one binary Connect unary request
-- SPDX-License-Identifier: LGPL-2.1-or-later
--
-- kv.v1.KVService/Get with GetRequest{key: "hello"} = 0a 05 68 65 6c 6c 6f.
-- The echo servers accept any path and echo the body back.

wrk.method = "POST"
wrk.path = "/kv.v1.KVService/Get"
wrk.headers["Content-Type"] = "application/proto"
wrk.headers["Connect-Protocol-Version"] = "1"
wrk.body = "\010\005hello"
