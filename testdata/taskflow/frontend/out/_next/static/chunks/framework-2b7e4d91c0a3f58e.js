/*
 * TaskFlow framework chunk: a few DOM, state and formatting helpers that
 * the pages share. Plain ES5-style JavaScript, no dependencies.
 */
(self.__TF_CHUNKS__ = self.__TF_CHUNKS__ || []).push([
  ["framework"],
  {
    "framework/dom": function (module, exports) {
      "use strict";

      var BOOLEAN_ATTRS = { checked: true, disabled: true, hidden: true };

      // h("li", {className: "task", onclick: fn}, child, "text", [more])
      function h(tag, props) {
        var el = document.createElement(tag);
        if (props) {
          Object.keys(props).forEach(function (key) {
            var value = props[key];
            if (value === undefined || value === null || value === false) {
              return;
            }
            if (key === "className") {
              el.className = value;
            } else if (key === "dataset") {
              Object.keys(value).forEach(function (d) {
                el.dataset[d] = String(value[d]);
              });
            } else if (key.slice(0, 2) === "on" && typeof value === "function") {
              el.addEventListener(key.slice(2).toLowerCase(), value);
            } else if (BOOLEAN_ATTRS[key]) {
              el[key] = true;
            } else {
              el.setAttribute(key, String(value));
            }
          });
        }
        for (var i = 2; i < arguments.length; i++) {
          append(el, arguments[i]);
        }
        return el;
      }

      function append(parent, child) {
        if (child === undefined || child === null || child === false) {
          return;
        }
        if (Array.isArray(child)) {
          child.forEach(function (c) {
            append(parent, c);
          });
          return;
        }
        if (typeof child === "string" || typeof child === "number") {
          child = document.createTextNode(String(child));
        }
        parent.appendChild(child);
      }

      function clear(el) {
        while (el.firstChild) {
          el.removeChild(el.firstChild);
        }
        return el;
      }

      function replaceChildren(el) {
        clear(el);
        for (var i = 1; i < arguments.length; i++) {
          append(el, arguments[i]);
        }
        return el;
      }

      // Event delegation: on(list, "click", "[data-action]", handler)
      function on(root, type, selector, handler) {
        root.addEventListener(type, function (event) {
          var target = event.target;
          var match = target && target.closest ? target.closest(selector) : null;
          if (match && root.contains(match)) {
            handler(event, match);
          }
        });
      }

      function $(selector, root) {
        return (root || document).querySelector(selector);
      }

      module.exports = {
        h: h,
        append: append,
        clear: clear,
        replaceChildren: replaceChildren,
        on: on,
        $: $
      };
    },

    "framework/store": function (module, exports) {
      "use strict";

      // A minimal observable store: setState shallow-merges and notifies
      // subscribers once per animation frame.
      function createStore(initial) {
        var state = Object.assign({}, initial);
        var listeners = [];
        var scheduled = false;

        function notify() {
          scheduled = false;
          listeners.slice().forEach(function (fn) {
            fn(state);
          });
        }

        function schedule() {
          if (scheduled) {
            return;
          }
          scheduled = true;
          var raf = self.requestAnimationFrame || function (fn) {
            return setTimeout(fn, 16);
          };
          raf(notify);
        }

        return {
          getState: function () {
            return state;
          },
          setState: function (patch) {
            var next = typeof patch === "function" ? patch(state) : patch;
            state = Object.assign({}, state, next);
            schedule();
          },
          subscribe: function (fn) {
            listeners.push(fn);
            return function unsubscribe() {
              listeners = listeners.filter(function (l) {
                return l !== fn;
              });
            };
          }
        };
      }

      module.exports = { createStore: createStore };
    },

    "framework/format": function (module, exports) {
      "use strict";

      var UNITS = [
        ["year", 31536000],
        ["month", 2592000],
        ["week", 604800],
        ["day", 86400],
        ["hour", 3600],
        ["minute", 60]
      ];

      function relativeTime(iso, now) {
        var then = Date.parse(iso);
        if (isNaN(then)) {
          return "";
        }
        var seconds = Math.round(((now || Date.now()) - then) / 1000);
        if (seconds < 45) {
          return "just now";
        }
        for (var i = 0; i < UNITS.length; i++) {
          var amount = Math.floor(seconds / UNITS[i][1]);
          if (amount >= 1) {
            return amount + " " + UNITS[i][0] + (amount === 1 ? "" : "s") + " ago";
          }
        }
        return "just now";
      }

      function plural(n, word) {
        return n + " " + word + (n === 1 ? "" : "s");
      }

      module.exports = { relativeTime: relativeTime, plural: plural };
    }
  }
]);
