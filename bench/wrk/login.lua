-- POST a JSON login for $LOGIN_EMAIL / $LOGIN_PASSWORD.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"' .. os.getenv("LOGIN_EMAIL") .. '","password":"' .. os.getenv("LOGIN_PASSWORD") .. '"}'
