/* Images from a private registry: the starter pulls a missing image with per-registry
 * credentials (DOCKER_PULL, DOCKER_REGISTRY_CREDENTIALS[_FILE]), shares one pull between the
 * jobs that need it, and refuses images outside ALLOWED_IMAGES before touching Docker.
 *
 * Against the real engine and the registry that tests/servers.sh runs on 127.0.0.1 with
 * htpasswd authentication (CT_REGISTRY, CT_REGISTRY_USER/PASSWORD, CT_REGISTRY_LOG,
 * CT_DOCKER_CONFIG). The group setup pushes ct-ok there as ct/ok:1, ct/ok:many and ct/ok:outage,
 * then removes them from the engine: every test starts with the images missing locally. It also
 * pushes ct/broken:1, an image of its own whose layer it then deletes from the registry: its
 * pull fails inside the engine's 200 answer stream. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "docker.h"
#include "support.h"

#define LABEL "correctomatic.job_id"
#define WAIT_MS 30000
#define CALLBACK "http://127.0.0.1:9/cb"

static const char *const tags[] = {"1", "many", "outage"};

/* "<registry>/ct/ok:<tag>" */
static const char *image(const char *tag)
{
    static char buf[4][256];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof(buf[i]), "%s/ct/ok:%s", ct_env("CT_REGISTRY"), tag);
    return buf[i];
}

static void remove_local_images(void)
{
    for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
        char path[512];
        long status = 0;
        snprintf(path, sizeof(path), "/images/%s?force=1", image(tags[i]));
        json_decref(ct_docker("DELETE", path, NULL, &status));
        if (status != 200 && status != 404)
            fail_msg("cannot remove %s locally: HTTP %ld", image(tags[i]), status);
        assert_false(ct_docker_image_exists(image(tags[i])));
    }
}

static int group_setup(void **state)
{
    (void)state;
    /* The docker CLI, with a configuration folder of the test servers (never the user's). */
    char cmd[4096], log[512];
    snprintf(log, sizeof(log), "%s/registry-push.log", ct_env("CT_TMP"));
    int n = 0;
    if (ct_engine_is_podman()) {
        /* Podman's compatible API logs in over TLS whatever registries.conf says (it skips
         * TLS for localhost only): the podman CLI against the same service, told the test
         * registry speaks plain HTTP, pushing Docker's manifests (as docker push does: the
         * setup reads one back), with an auth file of the test servers */
        char wrapper[512];
        snprintf(wrapper, sizeof(wrapper), "%s/podman-as-docker", ct_env("CT_TMP"));
        mkdir(wrapper, 0755);
        strcat(wrapper, "/docker");
        FILE *w = fopen(wrapper, "w");
        assert_non_null(w);
        fputs("#!/bin/sh\nc=$1; shift\ncase $c in\n"
              "login) exec podman --url \"$DOCKER_HOST\" login --tls-verify=false \"$@\" ;;\n"
              "push) exec podman --url \"$DOCKER_HOST\" push --tls-verify=false --format v2s2 "
              "\"$@\" ;;\n"
              "*) exec podman --url \"$DOCKER_HOST\" \"$c\" \"$@\" ;;\nesac\n",
              w);
        fclose(w);
        chmod(wrapper, 0755);
        n = snprintf(cmd, sizeof(cmd),
                     "export PATH='%s/podman-as-docker':\"$PATH\" "
                     "REGISTRY_AUTH_FILE='%s/podman-auth.json'; ",
                     ct_env("CT_TMP"), ct_env("CT_DOCKER_CONFIG"));
    }
    n +=
        snprintf(cmd + n, sizeof(cmd) - (size_t)n,
                 "export DOCKER_CONFIG='%s' DOCKER_HOST='%s'; "
                 "echo '%s' | timeout 60 docker login -u '%s' --password-stdin '%s' || exit 1",
                 ct_env("CT_DOCKER_CONFIG"), ct_env("CT_DOCKER_HOST"),
                 ct_env("CT_REGISTRY_PASSWORD"), ct_env("CT_REGISTRY_USER"), ct_env("CT_REGISTRY"));
    for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++)
        n += snprintf(cmd + n, sizeof(cmd) - (size_t)n,
                      "; docker tag ct-ok:latest '%s' && timeout 60 docker push '%s' || exit 1",
                      image(tags[i]), image(tags[i]));
    /* ct/broken:1: a layer of its own (absent from the engine once the tag is removed), then
     * deleted from the registry's storage through its API. */
    n +=
        snprintf(cmd + n, sizeof(cmd) - (size_t)n,
                 "; t=$(mktemp -d) && echo \"broken $$ $(date +%%s%%N)\" >$t/f && "
                 "tar -C $t -c f | docker import - '%s/ct/broken:1' >/dev/null && rm -rf $t && "
                 "timeout 60 docker push '%s/ct/broken:1' && docker rmi '%s/ct/broken:1' && "
                 "d=$(curl -fsS -u '%s:%s' -H 'Accept: "
                 "application/vnd.docker.distribution.manifest.v2+json' "
                 "http://%s/v2/ct/broken/manifests/1 | python3 -c 'import json,sys; "
                 "print(json.load(sys.stdin)[\"layers\"][0][\"digest\"])') && "
                 "curl -fsS -u '%s:%s' -X DELETE http://%s/v2/ct/broken/blobs/$d || exit 1",
                 ct_env("CT_REGISTRY"), ct_env("CT_REGISTRY"), ct_env("CT_REGISTRY"),
                 ct_env("CT_REGISTRY_USER"), ct_env("CT_REGISTRY_PASSWORD"), ct_env("CT_REGISTRY"),
                 ct_env("CT_REGISTRY_USER"), ct_env("CT_REGISTRY_PASSWORD"), ct_env("CT_REGISTRY"));
    snprintf(cmd + n, sizeof(cmd) - (size_t)n, "; docker logout '%s' >/dev/null",
             ct_env("CT_REGISTRY"));
    char *full = NULL;
    assert_true(asprintf(&full, "(%s) >'%s' 2>&1", cmd, log) > 0);
    int64_t t0 = ct_now_ms();
    int rc = system(full);
    free(full);
    if (rc != 0) {
        char *out = ct_read_file(log, NULL);
        fail_msg("pushing the test images failed:\n%s", out ? out : "");
    }
    fprintf(stderr, "# pushed %zu tags to %s in %lld ms\n", sizeof(tags) / sizeof(tags[0]),
            ct_env("CT_REGISTRY"), (long long)(ct_now_ms() - t0));
    return 0;
}

static void clean(void)
{
    ct_reset_pipeline();
    remove_local_images();
}

static int setup(void **state)
{
    (void)state;
    clean();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (ct_servers("status") != 0)
        ct_servers("registry-start"); /* a test that stopped it failed half-way */
    clean();
    return 0;
}

/* DOCKER_REGISTRY_CREDENTIALS for the test registry with this password. */
static const char *creds_env(const char *password)
{
    static char buf[512];
    snprintf(buf, sizeof(buf),
             "DOCKER_REGISTRY_CREDENTIALS={\"%s\": {\"username\": \"%s\", \"password\": \"%s\"}}",
             ct_env("CT_REGISTRY"), ct_env("CT_REGISTRY_USER"), password);
    return buf;
}

static void start_starter(struct ct_daemon *d, const char *name, const char *const *extra)
{
    const char *env[32] = {"RETRY_MIN=100ms", "RETRY_MAX=1s", "RECONCILE_INTERVAL=1s"};
    size_t n = 3;
    for (size_t i = 0; extra && extra[i] && n < 31; i++)
        env[n++] = extra[i];
    env[n] = NULL;
    ct_daemon_start(d, "starter", name, env);
}

static void publish_job(const char *work_id, const char *img, const char *file)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "work_id", work_id, "image", img, "file", file,
                          "callback", CALLBACK);
    char *body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    ct_amqp_publish("pending_corrections", body, NULL);
    free(body);
}

static json_t *get_json(const char *queue)
{
    struct ct_msg *m = ct_amqp_get(queue, WAIT_MS);
    if (!m)
        fail_msg("no message on %s", queue);
    json_t *j = ct_json(m->body);
    ct_msg_free(m);
    return j;
}

/* The finished_corrections error of work_id (messages of other jobs are matched too: the
 * caller gets them all in a loop). */
static void expect_failure(json_t *msg, const char *prefix)
{
    const char *data = json_string_value(json_object_get(msg, "correction_data"));
    assert_true(json_is_true(json_object_get(msg, "error")));
    assert_non_null(data);
    if (strncmp(data, prefix, strlen(prefix)) != 0)
        fail_msg("correction_data \"%s\" does not start with \"%s\"", data, prefix);
}

static const char *exercise(void)
{
    static char path[512];
    if (!path[0]) {
        char *p = ct_tmpfile("registry-exercise.txt", "42\n", 3);
        snprintf(path, sizeof(path), "%s", p);
        free(p);
    }
    return path;
}

/* A running message for a container of img that exists. */
static void expect_running(const char *img, const char *work_id)
{
    json_t *running = get_json("running_corrections");
    const char *cid = json_string_value(json_object_get(running, "container_id"));
    assert_non_null(cid);
    if (work_id)
        assert_string_equal(json_string_value(json_object_get(running, "work_id")), work_id);
    json_t *c = ct_docker_inspect(cid);
    assert_non_null(c);
    assert_string_equal(json_string_value(json_object_get(json_object_get(c, "Config"), "Image")),
                        img);
    json_decref(c);
    json_decref(running);
}

/* ---- tests ---------------------------------------------------------------------------------- */

/* Good credentials, from a file: the image is pulled, the job runs. The secret is not logged. */
static void test_pull_with_credentials(void **state)
{
    (void)state;
    struct ct_daemon d;
    char creds[512];
    snprintf(creds, sizeof(creds), "{\"%s\": {\"username\": \"%s\", \"password\": \"%s\"}}",
             ct_env("CT_REGISTRY"), ct_env("CT_REGISTRY_USER"), ct_env("CT_REGISTRY_PASSWORD"));
    char *file = ct_tmpfile("registry-creds.json", creds, strlen(creds));
    char file_env[600], allowed[300];
    snprintf(file_env, sizeof(file_env), "DOCKER_REGISTRY_CREDENTIALS_FILE=%s", file);
    free(file);
    snprintf(allowed, sizeof(allowed), "ALLOWED_IMAGES=%s/*,ct-*", ct_env("CT_REGISTRY"));
    start_starter(&d, "registry-pull",
                  (const char *[]){"DOCKER_PULL=true", file_env, allowed, NULL});
    ct_daemon_wait_log(&d, "starter running", 1, WAIT_MS);

    int64_t t0 = ct_now_ms();
    publish_job("w-pull", image("1"), exercise());
    expect_running(image("1"), "w-pull");
    fprintf(stderr, "# job published -> running with a pull: %lld ms\n",
            (long long)(ct_now_ms() - t0));
    assert_true(ct_docker_image_exists(image("1")));
    assert_int_equal(ct_file_count(d.log, "msg=\"pulling image\""), 1);
    assert_int_equal(ct_file_count(d.log, "msg=\"image pulled\""), 1);
    /* Allowed: no warning that any image may run. */
    assert_int_equal(ct_file_count(d.log, "any image may run"), 0);

    /* The image is here now: the next job does not pull. */
    publish_job("w-pull-2", image("1"), exercise());
    expect_running(image("1"), "w-pull-2");
    assert_int_equal(ct_file_count(d.log, "msg=\"pulling image\""), 1);

    ct_daemon_stop(&d);
    assert_int_equal(ct_file_count(d.log, ct_env("CT_REGISTRY_PASSWORD")), 0);
    size_t len;
    char *log = ct_read_file(d.log, &len);
    char *line = strstr(log, "msg=\"image pulled\"");
    assert_non_null(line);
    *strchrnul(line, '\n') = '\0';
    fprintf(stderr, "# %s\n", line);
    free(log);
}

/* Wrong credentials, none at all, a tag that does not exist: the caller hears why. */
static void test_pull_failures(void **state)
{
    (void)state;
    struct ct_daemon d;
    start_starter(&d, "registry-fail", (const char *[]){"DOCKER_PULL=1", creds_env("wrong"), NULL});
    publish_job("w-wrong", image("1"), exercise());
    json_t *m = get_json("finished_corrections");
    assert_string_equal(json_string_value(json_object_get(m, "work_id")), "w-wrong");
    expect_failure(m, "image pull denied - ");
    fprintf(stderr, "# wrong credentials: %s\n",
            json_string_value(json_object_get(m, "correction_data")));
    json_decref(m);
    ct_daemon_stop(&d);

    start_starter(&d, "registry-fail-none", (const char *[]){"DOCKER_PULL=1", NULL});
    publish_job("w-none", image("1"), exercise());
    m = get_json("finished_corrections");
    expect_failure(m, "image pull denied - ");
    fprintf(stderr, "# no credentials: %s\n",
            json_string_value(json_object_get(m, "correction_data")));
    json_decref(m);
    /* Good credentials now, but no such tag. */
    ct_daemon_stop(&d);
    start_starter(
        &d, "registry-fail-tag",
        (const char *[]){"DOCKER_PULL=1", creds_env(ct_env("CT_REGISTRY_PASSWORD")), NULL});
    publish_job("w-notag", image("nope"), exercise());
    m = get_json("finished_corrections");
    expect_failure(m, "image not found - ");
    json_decref(m);
    assert_int_equal(ct_amqp_count("running_corrections"), 0);
    assert_false(ct_docker_image_exists(image("1")));
    ct_daemon_stop(&d);

    /* Without DOCKER_PULL a missing image stays the job's fault, and nothing is pulled. */
    start_starter(&d, "registry-nopull",
                  (const char *[]){creds_env(ct_env("CT_REGISTRY_PASSWORD")), NULL});
    ct_daemon_wait_log(&d, "DOCKER_PULL is off", 1, WAIT_MS);
    publish_job("w-nopull", image("1"), exercise());
    m = get_json("finished_corrections");
    expect_failure(m, "image not found - ");
    json_decref(m);
    assert_int_equal(ct_file_count(d.log, "pulling image"), 0);
    ct_daemon_stop(&d);
}

/* The registry has the manifest but not the layer: the engine answers 200, then
 * {"error": "unknown blob"} in the stream. A registry failing like that is not the job's fault:
 * the job waits for it, it is not failed, and it is not reported as started. */
static void test_pull_error_in_stream(void **state)
{
    (void)state;
    struct ct_daemon d;
    char img[300];
    snprintf(img, sizeof(img), "%s/ct/broken:1", ct_env("CT_REGISTRY"));
    start_starter(
        &d, "registry-broken",
        (const char *[]){"DOCKER_PULL=true", creds_env(ct_env("CT_REGISTRY_PASSWORD")), NULL});
    publish_job("w-broken", img, exercise());
    /* Docker: "unknown blob"; Podman: "reading blob <digest>: Error fetching blob: ..." */
    bool podman = ct_engine_is_podman();
    ct_daemon_wait_log(&d, podman ? "Error fetching blob" : "error=\"unknown blob\"", 2, WAIT_MS);
    char retried[400];
    snprintf(retried, sizeof(retried), "step=create error=\"%s: %s", img,
             podman ? "reading blob" : "unknown blob\"");
    ct_daemon_wait_log(&d, retried, 2, WAIT_MS);
    assert_int_equal(ct_file_count(d.log, "msg=\"image pulled\""), 0);
    assert_int_equal(ct_amqp_count("finished_corrections"), 0);
    assert_int_equal(ct_amqp_count("running_corrections"), 0);
    assert_false(ct_docker_image_exists(img));
    ct_daemon_stop(&d);
    /* The job went back to the queue at shutdown. */
    assert_int_equal(ct_amqp_count("pending_corrections"), 1);
}

/* Pull events of img in the engine since `since` (unix seconds). */
static int count_pull_events(const char *img, time_t since)
{
    char path[1024];
    long status = 0;
    json_t *filters = json_pack("{s:[s], s:[s]}", "type", "image", "event", "pull");
    char *fj = json_dumps(filters, JSON_COMPACT);
    char *f = docker_url_encode(fj);
    json_decref(filters);
    free(fj);
    snprintf(path, sizeof(path), "/events?since=%lld&until=%lld&filters=%s", (long long)since,
             (long long)time(NULL) + 1, f);
    free(f);
    size_t len;
    char *body = ct_docker_raw("GET", path, NULL, NULL, 0, &status, &len);
    assert_int_equal(status, 200);
    int count = 0;
    char needle[300];
    snprintf(needle, sizeof(needle), "\"id\":\"%s\"", img);
    for (char *p = body; (p = strstr(p, needle)); p++)
        count++;
    free(body);
    return count;
}

/* Ten jobs at once for one missing image: one pull, ten corrections. */
static void test_concurrent_jobs_share_one_pull(void **state)
{
    (void)state;
    struct ct_daemon d;
    char manifest[300];
    /* one look at the manifest per pull: Docker asks HEAD, then the blobs; Podman GET */
    snprintf(manifest, sizeof(manifest), "\"%s /v2/ct/ok/manifests/many ",
             ct_engine_is_podman() ? "GET" : "HEAD");
    int registry_before = ct_file_count(ct_env("CT_REGISTRY_LOG"), manifest);
    time_t since = time(NULL);
    /* Queued first, so that the starter takes the ten at once. */
    const char *file = exercise();
    for (int i = 0; i < 10; i++) {
        char wid[32];
        snprintf(wid, sizeof(wid), "w-many-%d", i);
        publish_job(wid, image("many"), file);
    }
    start_starter(&d, "registry-many",
                  (const char *[]){"DOCKER_PULL=true", "MAX_RUNNING=20",
                                   creds_env(ct_env("CT_REGISTRY_PASSWORD")), NULL});
    /* Without ALLOWED_IMAGES, said once at start. */
    ct_daemon_wait_log(&d, "ALLOWED_IMAGES is not set: any image may run", 1, WAIT_MS);
    for (int i = 0; i < 10; i++)
        expect_running(image("many"), NULL);
    assert_int_equal(ct_file_count(d.log, "msg=\"pulling image\""), 1);
    assert_int_equal(ct_file_count(d.log, "msg=\"image pulled\""), 1);
    /* Jobs that joined the pull rather than starting their own: those whose create came
     * before the image (MAX_STARTING sets a burst up a few at a time: the others found it). */
    int waited = ct_file_count(d.log, "msg=\"waiting for the image pull\"");
    assert_true(waited >= 1 && waited <= 10);
    if (!ct_engine_is_podman()) /* Podman's compatible /events gives no image events */
        assert_int_equal(count_pull_events(image("many"), since), 1);
    assert_int_equal(ct_file_count(ct_env("CT_REGISTRY_LOG"), manifest) - registry_before, 1);
    assert_int_equal(ct_file_count(d.log, "any image may run"), 1);
    ct_daemon_stop(&d);
}

/* A fake engine on a Unix socket: records every request line, answers the container list with
 * [] (so the starter consumes) and anything else with 500. */
static const char fake_docker_py[] =
    "import http.server, socketserver, sys, os\n"
    "sock, log = sys.argv[1], sys.argv[2]\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    protocol_version = 'HTTP/1.1'\n"
    "    def handle_any(self):\n"
    "        n = int(self.headers.get('Content-Length') or 0)\n"
    "        if n: self.rfile.read(n)\n"
    "        with open(log, 'a') as f: f.write(self.command + ' ' + self.path + '\\n')\n"
    "        ok = self.command == 'GET' and '/containers/json' in self.path\n"
    "        body = b'[]' if ok else b'{\"message\":\"fake engine\"}'\n"
    "        self.send_response(200 if ok else 500)\n"
    "        self.send_header('Content-Type', 'application/json')\n"
    "        self.send_header('Content-Length', str(len(body)))\n"
    "        self.end_headers()\n"
    "        self.wfile.write(body)\n"
    "    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any\n"
    "    def log_message(self, *a): pass\n"
    "class S(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):\n"
    "    daemon_threads = True\n"
    "    def get_request(self):\n"
    "        r, _ = self.socket.accept()\n"
    "        return r, ('local', 0)\n"
    "if os.path.exists(sock): os.unlink(sock)\n"
    "S(sock, H).serve_forever()\n";

static bool file_exists(void *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* A disallowed image is refused before any Docker call about it. */
static void test_disallowed_image_no_docker_call(void **state)
{
    (void)state;
    char sock[512], reqlog[512], host[600], pylog[512];
    snprintf(sock, sizeof(sock), "%s/fake-docker-%d.sock", ct_env("CT_TMP"), (int)getpid());
    snprintf(reqlog, sizeof(reqlog), "%s/fake-docker-%d.requests", ct_env("CT_TMP"), (int)getpid());
    snprintf(pylog, sizeof(pylog), "%s/fake-docker-%d.log", ct_env("CT_TMP"), (int)getpid());
    snprintf(host, sizeof(host), "DOCKER_HOST=unix://%s", sock);
    unlink(reqlog);
    char *argv[] = {"python3", "-c", (char *)fake_docker_py, sock, reqlog, NULL};
    pid_t fake = ct_spawn("/usr/bin/python3", argv, NULL, pylog);
    ct_track(fake);
    if (!ct_wait_until(file_exists, sock, WAIT_MS))
        fail_msg("the fake engine did not start (log: %s)", pylog);

    struct ct_daemon d;
    start_starter(
        &d, "registry-allow",
        (const char *[]){host, "DOCKER_PULL=true", "ALLOWED_IMAGES=ct-*, other.example/*", NULL});
    ct_daemon_wait_log(&d, "consuming pending jobs", 1, WAIT_MS);
    int64_t t0 = ct_now_ms();
    publish_job("w-evil", "evil.example/ct-ok:1", exercise());
    json_t *m = get_json("finished_corrections");
    int64_t took = ct_now_ms() - t0;
    assert_string_equal(json_string_value(json_object_get(m, "work_id")), "w-evil");
    expect_failure(m, "image not allowed - evil.example/ct-ok:1");
    json_decref(m);
    /* "ct-*" does not reach into another registry's paths. */
    publish_job("w-evil2", "ct-x.evil/ok", exercise());
    m = get_json("finished_corrections");
    expect_failure(m, "image not allowed - ");
    json_decref(m);
    fprintf(stderr, "# refused in %lld ms\n", (long long)took);
    ct_daemon_stop(&d);

    char *reqs = ct_read_file(reqlog, NULL);
    assert_non_null(reqs);
    fprintf(stderr, "# requests the fake engine saw:\n%s", reqs);
    for (char *line = reqs; *line;) {
        char *nl = strchrnul(line, '\n');
        bool known = strcmp(line, "GET /version") == 0 ||
                     strncmp(line, "GET /version\n", 13) == 0 ||
                     strncmp(line, "GET /v1.41/containers/json?", 27) == 0 ||
                     strncmp(line, "GET /v1.41/events?", 18) == 0;
        if (!known)
            fail_msg("the starter made a Docker call for the refused job: %.*s", (int)(nl - line),
                     line);
        line = *nl ? nl + 1 : nl;
    }
    free(reqs);
    ct_terminate(fake, 5000);
    ct_untrack(fake);
}

/* The registry is down: the job waits (retried, not failed), and runs once it is back. */
static void test_registry_outage(void **state)
{
    (void)state;
    struct ct_daemon d;
    start_starter(
        &d, "registry-outage",
        (const char *[]){"DOCKER_PULL=true", creds_env(ct_env("CT_REGISTRY_PASSWORD")), NULL});
    ct_daemon_wait_log(&d, "starter running", 1, WAIT_MS);
    assert_int_equal(ct_servers("registry-stop"), 0);
    publish_job("w-outage", image("outage"), exercise());
    ct_daemon_wait_log(&d, "msg=\"image pull failed\"", 2, WAIT_MS);
    ct_daemon_wait_log(&d, "infrastructure fault, will retry", 2, WAIT_MS);
    assert_int_equal(ct_amqp_count("finished_corrections"), 0);
    assert_int_equal(ct_amqp_count("running_corrections"), 0);
    int64_t t0 = ct_now_ms();
    assert_int_equal(ct_servers("registry-start"), 0);
    expect_running(image("outage"), "w-outage");
    fprintf(stderr, "# registry back -> running: %lld ms\n", (long long)(ct_now_ms() - t0));
    assert_int_equal(ct_amqp_count("finished_corrections"), 0);
    ct_daemon_stop(&d);
}

/* Bad registry settings stop the starter at start, naming the variable, never the secret. */
static void test_config_errors(void **state)
{
    (void)state;
    static const struct {
        const char *setting, *name;
    } cases[] = {
        {"DOCKER_REGISTRY_CREDENTIALS={\"r.example\": {\"username\": \"u\", \"password\": s3cr3t}}",
         "DOCKER_REGISTRY_CREDENTIALS"},
        {"DOCKER_REGISTRY_CREDENTIALS={\"r.example\": {\"user\": \"u\", \"password\": \"s3cr3t\"}}",
         "DOCKER_REGISTRY_CREDENTIALS"},
        {"DOCKER_REGISTRY_CREDENTIALS_FILE=/nonexistent/creds.json",
         "DOCKER_REGISTRY_CREDENTIALS_FILE"},
        {"ALLOWED_IMAGES= , ", "ALLOWED_IMAGES"},
        {"DOCKER_PULL=maybe", "DOCKER_PULL"},
        {"DOCKER_PULL_TIMEOUT=soon", "DOCKER_PULL_TIMEOUT"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ct_daemon d;
        char name[64];
        int status = 0;
        snprintf(name, sizeof(name), "registry-config-%zu", i);
        start_starter(&d, name, (const char *[]){cases[i].setting, NULL});
        if (ct_wait_exit(d.pid, WAIT_MS, &status) < 0)
            fail_msg("the starter did not refuse %s", cases[i].setting);
        ct_untrack(d.pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 2);
        assert_true(ct_file_count(d.log, cases[i].name) > 0);
        assert_int_equal(ct_file_count(d.log, "s3cr3t"), 0);
    }
    /* The same JSON, valid, in a file and in the variable: the registry is named twice. */
    const char *json = "{\"r.example\": {\"username\": \"u\", \"password\": \"s3cr3t\"}}";
    char *file = ct_tmpfile("registry-creds-dup.json", json, strlen(json));
    char file_env[600], var_env[600];
    snprintf(file_env, sizeof(file_env), "DOCKER_REGISTRY_CREDENTIALS_FILE=%s", file);
    free(file);
    snprintf(var_env, sizeof(var_env), "DOCKER_REGISTRY_CREDENTIALS=%s", json);
    struct ct_daemon d;
    int status = 0;
    start_starter(&d, "registry-config-dup", (const char *[]){file_env, var_env, NULL});
    assert_int_equal(ct_wait_exit(d.pid, WAIT_MS, &status), 0);
    ct_untrack(d.pid);
    assert_int_equal(WEXITSTATUS(status), 2);
    assert_true(ct_file_count(d.log, "given twice") > 0);
    assert_int_equal(ct_file_count(d.log, "s3cr3t"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pull_with_credentials, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pull_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pull_error_in_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_jobs_share_one_pull, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disallowed_image_no_docker_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registry_outage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
