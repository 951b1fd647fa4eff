/* jobtap-host: a tiny stand-in for the flux-core symbols a jobtap plugin
 * uses, so that the real mf_priority.so can be dlopen'ed and driven in tests
 * without Flux.
 *
 * Design: tests/build.rs compiles this file into a shared library
 * (OUT_DIR/libjobtap_host.so). The test harness (tests/tests/plugin_harness)
 * dlopens it with RTLD_GLOBAL *before* the plugin, so the plugin's undefined
 * flux_* symbols resolve here, just as they resolve against libflux-core and
 * job-manager.so in the broker. Every function forwards into a Rust function
 * pointer registered by the harness with jobtap_host_set(name, fn).
 *
 * C is needed because stable Rust cannot define C-variadic functions: the
 * variadic ones (flux_jobtap_jobspec_update_pack, flux_jobtap_event_post_pack,
 * flux_jobtap_raise_exception, flux_log) are implemented here: jansson pack
 * formats are rendered to JSON text (s, i, b, I, f, F, n, with {} [] : ,),
 * printf formats with vsnprintf; the Rust side receives plain strings.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

typedef struct flux_plugin flux_plugin_t;
typedef struct flux_plugin_arg flux_plugin_arg_t;
typedef struct flux_handle flux_t;
typedef struct flux_msg flux_msg_t;

/* ---- forward table ------------------------------------------------------ */

static int (*f_set_name) (void *p, const char *name);
static int (*f_add_handler) (void *p, const char *topic, void *cb, void *arg);
static int (*f_aux_set) (void *p, const char *key, void *val, void *free_fn);
static void *(*f_aux_get) (void *p, const char *key);
static const char *(*f_get_conf) (void *p);
static const char *(*f_arg_get) (void *args, int flags);
static int (*f_arg_set) (void *args, int flags, const char *json);
static void *(*f_get_flux) (void *p);
static int (*f_service_register) (void *p, const char *method, void *cb, void *arg);
static int (*f_set_load_sort_order) (void *p, const char *mode);
static int (*f_reprioritize_all) (void *p);
static int (*f_priority_unavail) (void *p, void *args);
static int (*f_dependency_add) (void *p, uint64_t id, const char *desc);
static int (*f_dependency_remove) (void *p, uint64_t id, const char *desc);
static int (*f_jobspec_update) (void *p, const char *json);
static int (*f_event_post) (void *p, uint64_t id, const char *name, const char *json);
static int (*f_raise_exception) (void *p, uint64_t id, const char *type, int sev, const char *note);
static int (*f_request_decode) (const void *msg, const char **topic, const char **s);
static int (*f_respond) (void *h, const void *msg, const char *s);
static int (*f_respond_error) (void *h, const void *msg, int errnum, const char *errstr);
static void (*f_log) (void *h, int level, const char *msg);

struct entry { const char *name; void **slot; };
static struct entry table[] = {
    { "set_name", (void **)&f_set_name },
    { "add_handler", (void **)&f_add_handler },
    { "aux_set", (void **)&f_aux_set },
    { "aux_get", (void **)&f_aux_get },
    { "get_conf", (void **)&f_get_conf },
    { "arg_get", (void **)&f_arg_get },
    { "arg_set", (void **)&f_arg_set },
    { "get_flux", (void **)&f_get_flux },
    { "service_register", (void **)&f_service_register },
    { "set_load_sort_order", (void **)&f_set_load_sort_order },
    { "reprioritize_all", (void **)&f_reprioritize_all },
    { "priority_unavail", (void **)&f_priority_unavail },
    { "dependency_add", (void **)&f_dependency_add },
    { "dependency_remove", (void **)&f_dependency_remove },
    { "jobspec_update", (void **)&f_jobspec_update },
    { "event_post", (void **)&f_event_post },
    { "raise_exception", (void **)&f_raise_exception },
    { "request_decode", (void **)&f_request_decode },
    { "respond", (void **)&f_respond },
    { "respond_error", (void **)&f_respond_error },
    { "log", (void **)&f_log },
    { NULL, NULL },
};

/* Registers the Rust implementation of `name`. Returns -1 if unknown. */
int jobtap_host_set (const char *name, void *fn)
{
    for (struct entry *e = table; e->name; e++) {
        if (strcmp (e->name, name) == 0) {
            *e->slot = fn;
            return 0;
        }
    }
    return -1;
}

#define FWD(fn, fail, ...) \
    do { if (!(fn)) { errno = ENOSYS; return fail; } return (fn) (__VA_ARGS__); } while (0)

/* ---- libflux-core: plugin --------------------------------------------- */

int flux_plugin_set_name (flux_plugin_t *p, const char *name)
{ FWD (f_set_name, -1, p, name); }

int flux_plugin_add_handler (flux_plugin_t *p, const char *topic, void *cb, void *arg)
{ FWD (f_add_handler, -1, p, topic, cb, arg); }

int flux_plugin_aux_set (flux_plugin_t *p, const char *key, void *val, void *free_fn)
{ FWD (f_aux_set, -1, p, key, val, free_fn); }

void *flux_plugin_aux_get (flux_plugin_t *p, const char *key)
{ FWD (f_aux_get, NULL, p, key); }

const char *flux_plugin_get_conf (flux_plugin_t *p)
{ FWD (f_get_conf, NULL, p); }

int flux_plugin_arg_get (flux_plugin_arg_t *args, int flags, char **json_str)
{
    const char *s;
    if (!f_arg_get || !json_str) {
        errno = EINVAL;
        return -1;
    }
    if (!(s = f_arg_get (args, flags))) {
        errno = ENOENT;
        return -1;
    }
    /* The caller frees the result with free(3), as with libflux-core. */
    if (!(*json_str = strdup (s)))
        return -1;
    return 0;
}

int flux_plugin_arg_set (flux_plugin_arg_t *args, int flags, const char *json_str)
{ FWD (f_arg_set, -1, args, flags, json_str); }

/* ---- job-manager: jobtap ---------------------------------------------- */

flux_t *flux_jobtap_get_flux (flux_plugin_t *p)
{ FWD (f_get_flux, NULL, p); }

int flux_jobtap_service_register (flux_plugin_t *p, const char *method, void *cb, void *arg)
{ FWD (f_service_register, -1, p, method, cb, arg); }

int flux_jobtap_set_load_sort_order (flux_plugin_t *p, const char *mode)
{ FWD (f_set_load_sort_order, -1, p, mode); }

int flux_jobtap_reprioritize_all (flux_plugin_t *p)
{ FWD (f_reprioritize_all, -1, p); }

int flux_jobtap_priority_unavail (flux_plugin_t *p, flux_plugin_arg_t *args)
{ FWD (f_priority_unavail, -1, p, args); }

int flux_jobtap_dependency_add (flux_plugin_t *p, uint64_t id, const char *desc)
{ FWD (f_dependency_add, -1, p, id, desc); }

int flux_jobtap_dependency_remove (flux_plugin_t *p, uint64_t id, const char *desc)
{ FWD (f_dependency_remove, -1, p, id, desc); }

/* ---- jansson-style pack to JSON text ----------------------------------- */

struct buf { char *s; size_t len, cap; int err; };

static void put (struct buf *b, const char *s, size_t n)
{
    if (b->err)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 256) + n;
        char *ns = realloc (b->s, cap);
        if (!ns) {
            b->err = 1;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy (b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void puts_json (struct buf *b, const char *s)
{
    if (!s) {
        b->err = 1;
        return;
    }
    put (b, "\"", 1);
    for (; *s; s++) {
        char tmp[8];
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            put (b, tmp, 2);
        } else if (c < 0x20) {
            snprintf (tmp, sizeof (tmp), "\\u%04x", c);
            put (b, tmp, 6);
        } else
            put (b, (const char *)&c, 1);
    }
    put (b, "\"", 1);
}

/* Renders a jansson pack format (subset) with its arguments as JSON text.
 * Returns a malloc'd string or NULL (EINVAL) on an unsupported format. */
static char *vpack (const char *fmt, va_list ap)
{
    struct buf b = { 0 };
    char tmp[64];
    if (!fmt)
        return NULL;
    for (const char *f = fmt; *f; f++) {
        switch (*f) {
            case '{': case '}': case '[': case ']': case ':': case ',':
                put (&b, f, 1);
                break;
            case ' ': case '\t': case '\n':
                break;
            case 's':
                puts_json (&b, va_arg (ap, const char *));
                break;
            case 'i':
                snprintf (tmp, sizeof (tmp), "%d", va_arg (ap, int));
                put (&b, tmp, strlen (tmp));
                break;
            case 'b':
                if (va_arg (ap, int))
                    put (&b, "true", 4);
                else
                    put (&b, "false", 5);
                break;
            case 'I':
                snprintf (tmp, sizeof (tmp), "%lld", va_arg (ap, long long));
                put (&b, tmp, strlen (tmp));
                break;
            case 'f': case 'F': {
                double d = va_arg (ap, double);
                snprintf (tmp, sizeof (tmp), "%.17g", d);
                put (&b, tmp, strlen (tmp));
                if (!strpbrk (tmp, ".eEn"))
                    put (&b, ".0", 2);
                break;
            }
            case 'n':
                put (&b, "null", 4);
                break;
            default:
                b.err = 1;
        }
    }
    if (b.err) {
        free (b.s);
        errno = EINVAL;
        return NULL;
    }
    return b.s;
}

int flux_jobtap_jobspec_update_pack (flux_plugin_t *p, const char *fmt, ...)
{
    va_list ap;
    char *json;
    int rc;
    va_start (ap, fmt);
    json = vpack (fmt, ap);
    va_end (ap);
    if (!json || !f_jobspec_update) {
        free (json);
        errno = EINVAL;
        return -1;
    }
    rc = f_jobspec_update (p, json);
    free (json);
    return rc;
}

int flux_jobtap_event_post_pack (flux_plugin_t *p, uint64_t id, const char *name,
                                 const char *fmt, ...)
{
    va_list ap;
    char *json = NULL;
    int rc;
    if (fmt) {
        va_start (ap, fmt);
        json = vpack (fmt, ap);
        va_end (ap);
        if (!json)
            return -1;
    }
    if (!f_event_post) {
        free (json);
        errno = ENOSYS;
        return -1;
    }
    rc = f_event_post (p, id, name, json);
    free (json);
    return rc;
}

int flux_jobtap_raise_exception (flux_plugin_t *p, uint64_t id, const char *type,
                                 int severity, const char *fmt, ...)
{
    va_list ap;
    char note[1024];
    va_start (ap, fmt);
    vsnprintf (note, sizeof (note), fmt ? fmt : "", ap);
    va_end (ap);
    FWD (f_raise_exception, -1, p, id, type, severity, note);
}

/* ---- libflux-core: messages and logging -------------------------------- */

int flux_request_decode (const flux_msg_t *msg, const char **topic, const char **s)
{ FWD (f_request_decode, -1, msg, topic, s); }

int flux_respond (flux_t *h, const flux_msg_t *msg, const char *s)
{ FWD (f_respond, -1, h, msg, s); }

int flux_respond_error (flux_t *h, const flux_msg_t *msg, int errnum, const char *errstr)
{ FWD (f_respond_error, -1, h, msg, errnum, errstr); }

int flux_log (flux_t *h, int level, const char *fmt, ...)
{
    va_list ap;
    char msg[4096];
    va_start (ap, fmt);
    vsnprintf (msg, sizeof (msg), fmt ? fmt : "", ap);
    va_end (ap);
    if (f_log)
        f_log (h, level, msg);
    return 0;
}

void flux_log_error (flux_t *h, const char *fmt, ...)
{
    va_list ap;
    char msg[4096];
    va_start (ap, fmt);
    vsnprintf (msg, sizeof (msg), fmt ? fmt : "", ap);
    va_end (ap);
    if (f_log)
        f_log (h, 3, msg);
}
