-- GET wrk.path with the access token from $ACCESS_TOKEN.
wrk.headers["Authorization"] = "Bearer " .. os.getenv("ACCESS_TOKEN")
