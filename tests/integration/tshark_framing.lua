-- PDU framing in front of Wireshark's own MSRP and BFCP dissectors, for
-- tests/integration/tshark_check.py.
--
-- Why: in Wireshark 4.0 both dissectors decode ONE PDU per call and do not
-- loop over a TCP segment (the MSRP dissector only asks for one more
-- segment while its first end-line is missing). A segment that ends one
-- MSRP chunk and starts the next, or holds two BFCP messages, leaves the
-- second PDU undissected, and a PDU that starts mid-segment and spans the
-- next segments is never reassembled. This script only finds the PDU
-- boundaries (what tcp_dissect_pdus does in C) and hands every PDU, whole,
-- to the stock dissector, which does all field decoding and flags
-- malformed PDUs; bytes that do not start a PDU get an expert error.
--
-- Ports come as script arguments:
--   -X lua_script:tshark_framing.lua -X lua_script1:msrp=5000,5001
--   -X lua_script1:bfcp=6000 -X lua_script1:tls=5001
-- A port listed under tls is registered on tls.port (decrypted TLS
-- payload), the others on tcp.port.

local msrp = Dissector.get("msrp")
local bfcp = Dissector.get("bfcp")
-- Dissector:call falls back to the "data" dissector when the stock
-- dissector refuses a PDU (and then returns the data's length): whether
-- it took the PDU is seen from its fields in the frame instead.
local msrp_end_line = Field.new("msrp.end.line")
local bfcp_primitive = Field.new("bfcp.primitive")

local function count(field)
  return select("#", field())
end

local ports = { msrp = {}, bfcp = {}, tls = {} }
for _, a in ipairs({ ... }) do
  local kind, list = a:match("^(%a+)=(.*)$")
  if kind and ports[kind] then
    for p in list:gmatch("%d+") do ports[kind][tonumber(p)] = true end
  end
end

local function new_proto(name, desc, more)
  local p = Proto(name, desc)
  local bad = ProtoExpert.new(name .. ".bad", desc .. ": bytes that do not start a PDU",
    expert.group.MALFORMED, expert.severity.ERROR)
  local list = { bad }
  for _, e in ipairs(more or {}) do list[#list + 1] = e end
  p.experts = list
  return p, bad
end

local msrp_masked = ProtoExpert.new("msrpstream.masked",
  "';' in the first body bytes masked for the MSRP dissector (Wireshark 4.0 Content-Type bug)",
  expert.group.COMMENTS_GROUP, expert.severity.NOTE)
local msrp_stream, msrp_bad = new_proto("msrpstream", "MSRP stream framing", { msrp_masked })
local bfcp_refused = ProtoExpert.new("bfcpstream.refused",
  "BFCP dissector did not accept this PDU (unknown primitive or version?)",
  expert.group.MALFORMED, expert.severity.ERROR)
local bfcp_stream, bfcp_bad = new_proto("bfcpstream", "BFCP stream framing", { bfcp_refused })

-- One MSRP PDU: start line "MSRP <tid> ...", then up to and including
-- the end-line "-------<tid><flag>CRLF" (RFC 4975 section 7.1). The end-line
-- either follows the last header's CRLF or the body's CRLF, so searching
-- for CRLF "-------" tid from the end of the start line finds it.
local function msrp_pdu_len(s)
  local eol = s:find("\r\n", 1, true)
  if not eol then return nil end
  local tid = s:sub(1, eol - 1):match("^MSRP ([%w%.%-%+%%=]+) ")
  if not tid then return -1 end
  local needle = "\r\n-------" .. tid
  local at = s:find(needle, eol, true)
  if not at then return nil end
  local stop = at + #needle + 2 -- flag, CR, LF
  if stop > #s then return nil end
  return stop
end

-- Wireshark 4.0 bug worked around: packet-msrp.c looks for a ';' (a
-- Content-Type parameter) from the value's start over the length of the
-- whole line, so it reads up to len("Content-Type: ") bytes past the line;
-- when the Content-Type has no parameter and one of the first body bytes
-- is ';' (random binary bodies: a few percent of chunks) it computes a
-- negative length and throws "Malformed". The stock dissector then gets
-- a copy of the PDU with those few ';' bytes replaced by ':' (a note
-- says so); the framing, the headers and the end-line stay as sent.
local function masked_pdu(tvb, off, n, s, tree)
  local head_end = s:find("\r\n\r\n", 1, true)
  if not head_end or head_end > n then return tvb(off, n):tvb() end
  local ct_line_start = 1
  local ct = nil
  for line_start, value in s:sub(1, head_end + 1):gmatch("()[Cc]ontent%-[Tt]ype: ([^\r]*)\r\n") do
    ct_line_start, ct = line_start, value
  end
  if not ct or ct:find(";", 1, true) then return tvb(off, n):tvb() end
  local body = head_end + 4 -- 1-based index of the first body byte
  local window = #"Content-Type: " + 2
  local hit = false
  local ba = tvb(off, n):bytes()
  for i = body, math.min(body + window - 1, n - 1) do
    if s:byte(i) == 59 then -- ';'
      ba:set_index(i - 1, 58) -- ':'
      hit = true
    end
  end
  if not hit then return tvb(off, n):tvb() end
  tree:add_proto_expert_info(msrp_masked)
  return ba:tvb("MSRP PDU (';' masked)")
end

function msrp_stream.dissector(tvb, pinfo, tree)
  local len = tvb:len()
  local off = 0
  while off < len do
    local s = tvb:raw(off, len - off)
    if #s < 5 then
      if ("MSRP "):sub(1, #s) ~= s then
        tree:add_proto_expert_info(msrp_bad, "not an MSRP start line")
        return len
      end
      pinfo.desegment_offset = off
      pinfo.desegment_len = DESEGMENT_ONE_MORE_SEGMENT
      return len
    end
    local n = msrp_pdu_len(s)
    if n == -1 or s:sub(1, 5) ~= "MSRP " then
      tree:add_proto_expert_info(msrp_bad, "not an MSRP start line")
      return len
    end
    if n == nil then
      pinfo.desegment_offset = off
      pinfo.desegment_len = DESEGMENT_ONE_MORE_SEGMENT
      return len
    end
    local before = count(msrp_end_line)
    msrp:call(masked_pdu(tvb, off, n, s, tree), pinfo, tree)
    if count(msrp_end_line) == before then
      tree:add_proto_expert_info(msrp_bad, "MSRP dissector did not accept this PDU")
    end
    off = off + n
  end
  return len
end

-- One BFCP PDU over TCP: the 12-octet common header, Payload Length in
-- 4-octet units after it (RFC 8855 section 5.1); no fragmentation on TCP.
function bfcp_stream.dissector(tvb, pinfo, tree)
  local len = tvb:len()
  local off = 0
  while off < len do
    if len - off < 12 then
      pinfo.desegment_offset = off
      pinfo.desegment_len = 12 - (len - off)
      return len
    end
    local n = 12 + 4 * tvb(off + 2, 2):uint()
    if len - off < n then
      pinfo.desegment_offset = off
      pinfo.desegment_len = n - (len - off)
      return len
    end
    local before = count(bfcp_primitive)
    bfcp:call(tvb(off, n):tvb(), pinfo, tree)
    if count(bfcp_primitive) == before then
      -- Wireshark's BFCP dissector refuses what it cannot take for BFCP
      -- (a primitive or version it does not know): flag it, do not skip it.
      tree:add_proto_expert_info(bfcp_refused)
    end
    off = off + n
  end
  return len
end

local tcp_table = DissectorTable.get("tcp.port")
local tls_table = DissectorTable.get("tls.port")
for p in pairs(ports.msrp) do
  (ports.tls[p] and tls_table or tcp_table):add(p, msrp_stream)
end
for p in pairs(ports.bfcp) do
  (ports.tls[p] and tls_table or tcp_table):add(p, bfcp_stream)
end
