import os
from flask import Flask
import redis

app = Flask(__name__)
r = redis.Redis(host=os.environ.get("REDIS_HOST", "localhost"), port=6379)

@app.route("/")
def hello():
    count = r.incr("hits")
    return f"Hello! This page has been viewed {count} time(s).\n"

if __name__ == "__main__":
    app.run(host="0.0.0.0", port=5000)
