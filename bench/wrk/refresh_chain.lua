-- Each thread (one connection each) follows its own rotation chain: it presents its refresh
-- token, keeps the new one from the answer, and presents that next, as a real client would.
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("id", next_id)
end

function init(args)
  local index = 0
  for line in io.lines(os.getenv("REFRESH_TOKENS_FILE")) do
    index = index + 1
    if index == id then token = line end
  end
end

function request()
  return wrk.format("POST", "/api/v1/auth/refresh", {["Content-Type"] = "application/json"},
                    '{"refresh_token":"' .. token .. '"}')
end

function response(status, headers, body)
  local rotated = body:match('"refresh_token":"([^"]+)"')
  if rotated then token = rotated end
end
