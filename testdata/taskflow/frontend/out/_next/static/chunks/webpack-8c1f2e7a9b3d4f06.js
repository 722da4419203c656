/*
 * TaskFlow runtime chunk.
 *
 * A hand-written stand-in for the webpack runtime that a Next.js static
 * export ships. It keeps a tiny module registry: chunks push
 * [chunkIds, modules, entry?] onto self.__TF_CHUNKS__, the runtime defines
 * the modules and runs the entry once its chunk has been registered.
 * Chunks that load before the runtime are queued and drained here.
 */
(function (global) {
  "use strict";

  if (global.__tf_require__) {
    return;
  }

  var factories = Object.create(null);
  var cache = Object.create(null);
  var loadedChunks = Object.create(null);

  function define(id, factory) {
    if (factories[id]) {
      throw new Error("[taskflow] module defined twice: " + id);
    }
    factories[id] = factory;
  }

  function require(id) {
    var cached = cache[id];
    if (cached) {
      return cached.exports;
    }
    var factory = factories[id];
    if (!factory) {
      throw new Error("[taskflow] module not found: " + id);
    }
    var module = { id: id, exports: {} };
    cache[id] = module;
    factory.call(module.exports, module, module.exports, require);
    return module.exports;
  }

  require.has = function (id) {
    return Object.prototype.hasOwnProperty.call(factories, id);
  };

  require.chunks = function () {
    return Object.keys(loadedChunks);
  };

  function registerChunk(chunk) {
    var ids = chunk[0] || [];
    var modules = chunk[1] || {};
    var entry = chunk[2];
    for (var id in modules) {
      if (Object.prototype.hasOwnProperty.call(modules, id)) {
        define(id, modules[id]);
      }
    }
    for (var i = 0; i < ids.length; i++) {
      loadedChunks[ids[i]] = true;
    }
    if (typeof entry === "function") {
      entry(require);
    }
    return ids.length;
  }

  var queue = (global.__TF_CHUNKS__ = global.__TF_CHUNKS__ || []);
  global.__tf_require__ = require;

  var waiting = queue.splice(0, queue.length);
  queue.push = function () {
    for (var i = 0; i < arguments.length; i++) {
      registerChunk(arguments[i]);
    }
    return Array.prototype.push.apply(this, arguments);
  };
  for (var i = 0; i < waiting.length; i++) {
    queue.push(waiting[i]);
  }
})(typeof self !== "undefined" ? self : this);
