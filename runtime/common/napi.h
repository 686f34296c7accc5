/*
 * What the runtime's Node-API addons (proxy/native/reuseport.c, vrrpd/native/vrrpnet.c) share: argument
 * fetching, JavaScript exceptions, buffers, and the table of exported functions. Node-API version 8, so one
 * binary loads in Node 18 and later.
 */
#ifndef HASETUP_NAPI_H
#define HASETUP_NAPI_H

#define NAPI_VERSION 8
#include <node_api.h>

#include <stdio.h>
#include <string.h>

/* Throws an Error with `msg` (and `code`, or none for NULL); returns NULL for the caller to return. */
static inline napi_value throw_code(napi_env env, const char *code, const char *msg) {
  napi_throw_error(env, code, msg);
  return NULL;
}

static inline napi_value throw_msg(napi_env env, const char *msg) { return throw_code(env, NULL, msg); }

/*
 * At least `min` of at most `max` arguments into argv (missing ones are undefined); 0, or -1 with a
 * TypeError saying `usage` pending.
 */
static inline int get_args(napi_env env, napi_callback_info info, size_t min, size_t max, napi_value *argv, const char *usage) {
  size_t argc = max;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < min) {
    napi_throw_type_error(env, NULL, usage);
    return -1;
  }
  return 0;
}

/* A string argument into buf (NUL-terminated); -1 when it is not a string or does not fit. */
static inline int get_string(napi_env env, napi_value v, char *buf, size_t size) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, buf, size, &len) != napi_ok) return -1;
  if (len >= size - 1) return -1;
  return 0;
}

/* The bytes of a Buffer argument; -1 when it is not a Buffer. */
static inline int get_buffer(napi_env env, napi_value v, void **data, size_t *len) {
  bool isbuf = false;
  napi_is_buffer(env, v, &isbuf);
  if (!isbuf || napi_get_buffer_info(env, v, data, len) != napi_ok) return -1;
  return 0;
}

static inline napi_value int_value(napi_env env, int64_t n) {
  napi_value out;
  napi_create_int64(env, n, &out);
  return out;
}

struct addon_fn {
  const char *name;
  napi_callback fn;
};

static inline napi_value export_functions(napi_env env, napi_value exports, const struct addon_fn *fns, size_t n) {
  for (size_t i = 0; i < n; i++) {
    napi_value f;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f);
    napi_set_named_property(env, exports, fns[i].name, f);
  }
  return exports;
}

/* The addon's module: ADDON_EXPORTS({ "name", function }, ...) */
#define ADDON_EXPORTS(...)                                                                  \
  static napi_value addon_init(napi_env env, napi_value exports) {                           \
    static const struct addon_fn fns[] = { __VA_ARGS__ };                                    \
    return export_functions(env, exports, fns, sizeof fns / sizeof fns[0]);                  \
  }                                                                                          \
  NAPI_MODULE(NODE_GYP_MODULE_NAME, addon_init)

#endif
