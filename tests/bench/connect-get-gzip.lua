-- connect-get-gzip.lua: connect-get.lua plus "Accept-Encoding: gzip"
-- SPDX-License-Identifier: LGPL-2.1-or-later
--
-- The same binary Connect unary Get, but accepting gzip responses the way
-- CpChannel (and connect-go's client) does by default, so the server's
-- response-compression policy shows up in the numbers.

wrk.method = "POST"
wrk.path = "/kv.v1.KVService/Get"
wrk.headers["Content-Type"] = "application/proto"
wrk.headers["Connect-Protocol-Version"] = "1"
wrk.headers["Accept-Encoding"] = "gzip"
wrk.body = "\010\005hello"
