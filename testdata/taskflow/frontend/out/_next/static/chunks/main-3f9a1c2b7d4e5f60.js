/*
 * TaskFlow main chunk: the API client and the boot code that picks the
 * page module named in __NEXT_DATA__ and hands it the page root.
 */
(self.__TF_CHUNKS__ = self.__TF_CHUNKS__ || []).push([
  ["main"],
  {
    "main/api": function (module, exports) {
      "use strict";

      var DEFAULT_TIMEOUT_MS = 8000;

      function ApiError(message, status, body) {
        this.name = "ApiError";
        this.message = message;
        this.status = status || 0;
        this.body = body || null;
      }
      ApiError.prototype = Object.create(Error.prototype);
      ApiError.prototype.constructor = ApiError;

      function request(method, path, body) {
        var controller = typeof AbortController === "function" ? new AbortController() : null;
        var timer = controller
          ? setTimeout(function () {
              controller.abort();
            }, DEFAULT_TIMEOUT_MS)
          : null;

        var init = {
          method: method,
          headers: { Accept: "application/json" },
          credentials: "same-origin",
          signal: controller ? controller.signal : undefined
        };
        if (body !== undefined) {
          init.headers["Content-Type"] = "application/json";
          init.body = JSON.stringify(body);
        }

        return fetch(path, init)
          .then(function (res) {
            if (res.status === 204) {
              return null;
            }
            return res.text().then(function (text) {
              var data = null;
              if (text) {
                try {
                  data = JSON.parse(text);
                } catch (e) {
                  throw new ApiError("invalid JSON from " + path, res.status, text);
                }
              }
              if (!res.ok) {
                var msg = (data && data.error) || res.status + " " + res.statusText;
                throw new ApiError(msg, res.status, data);
              }
              return data;
            });
          })
          .catch(function (err) {
            if (err && err.name === "AbortError") {
              throw new ApiError("request to " + path + " timed out", 0);
            }
            if (err instanceof ApiError) {
              throw err;
            }
            throw new ApiError("network error: " + (err && err.message), 0);
          })
          .finally(function () {
            if (timer) {
              clearTimeout(timer);
            }
          });
      }

      module.exports = {
        ApiError: ApiError,
        health: function () {
          return request("GET", "/api/health");
        },
        listTasks: function () {
          return request("GET", "/api/tasks").then(function (data) {
            return (data && data.tasks) || [];
          });
        },
        createTask: function (title) {
          return request("POST", "/api/tasks", { title: title });
        },
        updateTask: function (id, patch) {
          return request("PATCH", "/api/tasks/" + encodeURIComponent(id), patch);
        },
        deleteTask: function (id) {
          return request("DELETE", "/api/tasks/" + encodeURIComponent(id));
        }
      };
    },

    "main/boot": function (module, exports, require) {
      "use strict";

      var dom = require("framework/dom");
      var api = require("main/api");

      function readNextData() {
        var el = document.getElementById("__NEXT_DATA__");
        if (!el) {
          return { page: "/", props: { pageProps: {} } };
        }
        try {
          return JSON.parse(el.textContent);
        } catch (e) {
          console.error("[taskflow] bad __NEXT_DATA__", e);
          return { page: "/", props: { pageProps: {} } };
        }
      }

      function pageModuleId(page) {
        return "pages" + (page === "/" ? "/index" : page);
      }

      function showFatal(root, err) {
        dom.replaceChildren(
          root,
          dom.h(
            "div",
            { className: "fatal", role: "alert" },
            dom.h("h2", null, "Something went wrong"),
            dom.h("p", null, String((err && err.message) || err))
          )
        );
      }

      function watchBackend() {
        var badge = document.getElementById("backend-status");
        if (!badge) {
          return;
        }
        api
          .health()
          .then(function (data) {
            badge.textContent = "backend: " + ((data && data.status) || "unknown");
            badge.className = "status status--ok";
          })
          .catch(function (err) {
            badge.textContent = "backend: unreachable";
            badge.className = "status status--down";
            badge.title = err.message;
          });
      }

      function start() {
        var data = readNextData();
        var root = document.getElementById("__next");
        var id = pageModuleId(data.page);
        if (!require.has(id)) {
          console.warn("[taskflow] no client code for page " + data.page);
          return;
        }
        try {
          require(id).mount(root, (data.props && data.props.pageProps) || {});
          document.documentElement.setAttribute("data-hydrated", "true");
        } catch (err) {
          console.error(err);
          showFatal(root, err);
        }
        watchBackend();
      }

      module.exports = { start: start };
    }
  },
  function (require) {
    var boot = require("main/boot");
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", boot.start);
    } else {
      setTimeout(boot.start, 0);
    }
  }
]);
