/*
 * TaskFlow page chunk for "/": hydrates the prerendered task list, loads
 * tasks from /api/tasks and wires up add / toggle / delete / filter.
 */
(self.__TF_CHUNKS__ = self.__TF_CHUNKS__ || []).push([
  ["pages/index"],
  {
    "pages/index": function (module, exports, require) {
      "use strict";

      var dom = require("framework/dom");
      var createStore = require("framework/store").createStore;
      var format = require("framework/format");
      var api = require("main/api");

      var h = dom.h;
      var MAX_TITLE = 200;
      var FILTERS = {
        all: function () {
          return true;
        },
        open: function (t) {
          return !t.done;
        },
        done: function (t) {
          return t.done;
        }
      };

      function sortTasks(tasks) {
        return tasks.slice().sort(function (a, b) {
          if (a.done !== b.done) {
            return a.done ? 1 : -1;
          }
          return String(b.created_at).localeCompare(String(a.created_at));
        });
      }

      function taskItem(task) {
        var id = "task-" + task.id;
        return h(
          "li",
          {
            className: "task" + (task.done ? " task--done" : ""),
            dataset: { id: task.id }
          },
          h("input", {
            type: "checkbox",
            id: id,
            className: "task__toggle",
            checked: task.done,
            "data-action": "toggle",
            "aria-label": "Mark \u201c" + task.title + "\u201d as " + (task.done ? "open" : "done")
          }),
          h(
            "label",
            { className: "task__body", for: id },
            h("span", { className: "task__title" }, task.title),
            h(
              "span",
              { className: "task__meta" },
              "#" + task.slug + " \u00b7 " + format.relativeTime(task.created_at)
            )
          ),
          h(
            "button",
            {
              type: "button",
              className: "task__delete",
              "data-action": "delete",
              "aria-label": "Delete \u201c" + task.title + "\u201d"
            },
            "\u00d7"
          )
        );
      }

      function mount(root) {
        var form = dom.$("#new-task-form", root);
        var input = dom.$("#new-task-title", root);
        var list = dom.$("#task-list", root);
        var summary = dom.$("#task-summary", root);
        var banner = dom.$("#error-banner", root);
        var filters = dom.$("#task-filters", root);

        var store = createStore({
          tasks: [],
          filter: "all",
          loading: true,
          busy: false,
          error: null
        });

        function fail(err) {
          store.setState({ error: err.message || String(err), busy: false, loading: false });
        }

        function upsert(task) {
          store.setState(function (s) {
            var found = false;
            var tasks = s.tasks.map(function (t) {
              if (t.id === task.id) {
                found = true;
                return task;
              }
              return t;
            });
            if (!found) {
              tasks.push(task);
            }
            return { tasks: tasks, busy: false, error: null };
          });
        }

        function render(state) {
          var visible = sortTasks(state.tasks.filter(FILTERS[state.filter]));
          var open = state.tasks.filter(FILTERS.open).length;

          if (state.loading) {
            dom.replaceChildren(list, h("li", { className: "task task--placeholder" }, "Loading tasks\u2026"));
          } else if (visible.length === 0) {
            dom.replaceChildren(
              list,
              h(
                "li",
                { className: "task task--placeholder" },
                state.filter === "all" ? "No tasks yet. Add one above." : "Nothing here."
              )
            );
          } else {
            dom.replaceChildren(list, visible.map(taskItem));
          }

          summary.textContent =
            format.plural(open, "open task") + " \u00b7 " + (state.tasks.length - open) + " done";

          banner.hidden = !state.error;
          banner.textContent = state.error || "";

          form.querySelector("button").disabled = state.busy;
          Array.prototype.forEach.call(filters.querySelectorAll("[data-filter]"), function (btn) {
            var active = btn.getAttribute("data-filter") === state.filter;
            btn.setAttribute("aria-pressed", active ? "true" : "false");
          });
        }

        store.subscribe(render);

        form.addEventListener("submit", function (event) {
          event.preventDefault();
          var title = input.value.trim();
          if (!title) {
            input.focus();
            return;
          }
          if (title.length > MAX_TITLE) {
            fail(new Error("Title is too long (max " + MAX_TITLE + " characters)."));
            return;
          }
          store.setState({ busy: true });
          api
            .createTask(title)
            .then(function (task) {
              input.value = "";
              upsert(task);
            })
            .catch(fail);
        });

        dom.on(list, "change", "[data-action=toggle]", function (event, el) {
          var id = Number(el.closest(".task").dataset.id);
          api.updateTask(id, { done: el.checked }).then(upsert).catch(function (err) {
            el.checked = !el.checked;
            fail(err);
          });
        });

        dom.on(list, "click", "[data-action=delete]", function (event, el) {
          var id = Number(el.closest(".task").dataset.id);
          api
            .deleteTask(id)
            .then(function () {
              store.setState(function (s) {
                return {
                  tasks: s.tasks.filter(function (t) {
                    return t.id !== id;
                  }),
                  error: null
                };
              });
            })
            .catch(fail);
        });

        dom.on(filters, "click", "[data-filter]", function (event, el) {
          store.setState({ filter: el.getAttribute("data-filter") });
        });

        api
          .listTasks()
          .then(function (tasks) {
            store.setState({ tasks: tasks, loading: false, error: null });
          })
          .catch(fail);

        render(store.getState());
      }

      module.exports = { mount: mount };
    }
  }
]);
