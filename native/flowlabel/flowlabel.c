/*
 * IPv6 flow labels on outbound TCP connections, and TCP_INFO, for services/marking.
 *
 * Why native: Linux installs a chosen flow label only in tcp_v6_connect, from sin6_flowinfo, and only when the
 * socket has IPV6_FLOWINFO_SEND set and the label was registered first with IPV6_FLOWLABEL_MGR (specs/scitags.md
 * §6.1, the recipe of iperf3 -L). Node's connect always passes sin6_flowinfo = 0 and offers neither option, so
 * the socket is made and connected here and handed to Node as a connected fd (new net.Socket({ fd })).
 *
 * connect6(ip, port, label, timeoutMs, cb): the blocking part (connect + poll) runs on the libuv thread pool;
 * cb(errno, fd) with errno 0 on success. The fd is non-blocking and close-on-exec.
 * tcpInfo(fd): a few fields of struct tcp_info (rtt, cwnd, retransmits, delivery rate, bytes acked/received),
 * or undefined when getsockopt fails.
 * bpfObjGet(path) / bpfMapUpdate(fd, key, value) / bpfMapDelete(fd, key): the pinned flow map of the eBPF tc
 * marker (native/ebpf, services/marking/ebpf-marker.ts), updated synchronously at flow start and end — a bpf(2)
 * call takes microseconds, where spawning bpftool per flow would take milliseconds and let the first packets of
 * a response leave unlabelled. Each returns the fd / 0, or -errno.
 */
#include <node_api.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <linux/tcp.h> /* the full struct tcp_info (glibc's netinet/tcp.h lags behind) */
#include <sys/socket.h>
#include <sys/syscall.h>
#include <linux/bpf.h>

/* From <linux/in6.h>, which clashes with glibc's <netinet/in.h>. */
#ifndef IPV6_FLOWLABEL_MGR
#define IPV6_FLOWLABEL_MGR 32
#endif
#ifndef IPV6_FLOWINFO_SEND
#define IPV6_FLOWINFO_SEND 33
#endif
#define FL_A_GET 0
#define FL_F_CREATE 1
#define FL_S_ANY 255
struct flowlabel_req {
  struct in6_addr flr_dst;
  uint32_t flr_label; /* network order */
  uint8_t flr_action;
  uint8_t flr_share;
  uint16_t flr_flags;
  uint16_t flr_expires;
  uint16_t flr_linger;
  uint32_t __flr_pad;
};

typedef struct {
  napi_async_work work;
  napi_ref cb;
  struct in6_addr dst;
  uint16_t port;
  uint32_t label;
  int timeout_ms;
  int fd;
  int err;
} connect_job;

static void connect_execute(napi_env env, void *data) {
  (void)env;
  connect_job *j = data;
  j->fd = -1;
  int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_TCP);
  if (fd < 0) { j->err = errno; return; }
  struct flowlabel_req req;
  memset(&req, 0, sizeof req);
  req.flr_dst = j->dst;
  req.flr_label = htonl(j->label & 0xFFFFF);
  req.flr_action = FL_A_GET;
  req.flr_flags = FL_F_CREATE;
  /* Shared: two flows to one peer may draw the same label (same tag and entropy); each socket holds a reference. */
  req.flr_share = FL_S_ANY;
  int one = 1;
  if (setsockopt(fd, IPPROTO_IPV6, IPV6_FLOWLABEL_MGR, &req, sizeof req) != 0 ||
      setsockopt(fd, IPPROTO_IPV6, IPV6_FLOWINFO_SEND, &one, sizeof one) != 0) {
    j->err = errno;
    close(fd);
    return;
  }
  struct sockaddr_in6 sa;
  memset(&sa, 0, sizeof sa);
  sa.sin6_family = AF_INET6;
  sa.sin6_port = htons(j->port);
  sa.sin6_addr = j->dst;
  sa.sin6_flowinfo = htonl(j->label & 0xFFFFF);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    if (errno != EINPROGRESS) { j->err = errno; close(fd); return; }
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    int n;
    do n = poll(&p, 1, j->timeout_ms); while (n < 0 && errno == EINTR);
    if (n == 0) { j->err = ETIMEDOUT; close(fd); return; }
    if (n < 0) { j->err = errno; close(fd); return; }
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0) soerr = errno;
    if (soerr != 0) { j->err = soerr; close(fd); return; }
  }
  j->err = 0;
  j->fd = fd;
}

static void connect_complete(napi_env env, napi_status status, void *data) {
  connect_job *j = data;
  napi_value cb, undef, argv[2];
  napi_get_reference_value(env, j->cb, &cb);
  napi_get_undefined(env, &undef);
  int err = status == napi_ok ? j->err : ECANCELED;
  if (status != napi_ok && j->fd >= 0) close(j->fd);
  napi_create_int32(env, err, &argv[0]);
  napi_create_int32(env, err == 0 ? j->fd : -1, &argv[1]);
  napi_call_function(env, undef, cb, 2, argv, NULL);
  napi_delete_reference(env, j->cb);
  napi_delete_async_work(env, j->work);
  free(j);
}

static napi_value connect6(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 5) { napi_throw_type_error(env, NULL, "connect6(ip, port, label, timeoutMs, cb)"); return NULL; }
  char ip[64];
  size_t iplen = 0;
  if (napi_get_value_string_utf8(env, argv[0], ip, sizeof ip, &iplen) != napi_ok) { napi_throw_type_error(env, NULL, "ip must be a string"); return NULL; }
  connect_job *j = calloc(1, sizeof *j);
  if (!j) { napi_throw_error(env, NULL, "out of memory"); return NULL; }
  if (inet_pton(AF_INET6, ip, &j->dst) != 1) { free(j); napi_throw_type_error(env, NULL, "ip must be an IPv6 address"); return NULL; }
  uint32_t port = 0, label = 0;
  int32_t tmo = 0;
  napi_get_value_uint32(env, argv[1], &port);
  napi_get_value_uint32(env, argv[2], &label);
  napi_get_value_int32(env, argv[3], &tmo);
  j->port = (uint16_t)port;
  j->label = label;
  j->timeout_ms = tmo > 0 ? tmo : -1;
  napi_create_reference(env, argv[4], 1, &j->cb);
  napi_value name;
  napi_create_string_utf8(env, "cargoport.flowlabel.connect6", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, connect_execute, connect_complete, j, &j->work);
  napi_queue_async_work(env, j->work);
  return NULL;
}

static void set_num(napi_env env, napi_value obj, const char *key, double v) {
  napi_value n;
  napi_create_double(env, v, &n);
  napi_set_named_property(env, obj, key, n);
}

static napi_value tcp_info_of(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], undef;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_get_undefined(env, &undef);
  int32_t fd = -1;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) return undef;
  struct tcp_info ti;
  memset(&ti, 0, sizeof ti);
  socklen_t len = sizeof ti;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) return undef;
  napi_value o;
  napi_create_object(env, &o);
  /* Raw kernel units, as flowd-go's lean mode: µs for times, bytes/s for the rate. */
  set_num(env, o, "rtt", ti.tcpi_rtt);
  set_num(env, o, "rttvar", ti.tcpi_rttvar);
  set_num(env, o, "snd_cwnd", ti.tcpi_snd_cwnd);
  set_num(env, o, "snd_mss", ti.tcpi_snd_mss);
  set_num(env, o, "pmtu", ti.tcpi_pmtu);
  set_num(env, o, "retransmits", ti.tcpi_total_retrans);
  set_num(env, o, "min_rtt", ti.tcpi_min_rtt);
  set_num(env, o, "delivery_rate", (double)ti.tcpi_delivery_rate);
  set_num(env, o, "bytes_acked", (double)ti.tcpi_bytes_acked);
  set_num(env, o, "bytes_received", (double)ti.tcpi_bytes_received);
  return o;
}

static long bpf_call(int cmd, union bpf_attr *attr) {
  long r = syscall(__NR_bpf, cmd, attr, sizeof *attr);
  return r < 0 ? -errno : r;
}

static napi_value ret_int(napi_env env, long v) {
  napi_value n;
  napi_create_int32(env, (int32_t)v, &n);
  return n;
}

/* Arguments: (fd, key Buffer[, value Buffer]); NULL on a wrong type (the caller passes them, this is a guard). */
static int map_args(napi_env env, napi_callback_info info, size_t want, int32_t *fd, void **key, void **value) {
  size_t argc = 3, len = 0;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < want || napi_get_value_int32(env, argv[0], fd) != napi_ok) return -1;
  if (napi_get_buffer_info(env, argv[1], key, &len) != napi_ok) return -1;
  if (want == 3 && napi_get_buffer_info(env, argv[2], value, &len) != napi_ok) return -1;
  return 0;
}

static napi_value bpf_obj_get(napi_env env, napi_callback_info info) {
  size_t argc = 1, len = 0;
  napi_value argv[1];
  char path[4096];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], path, sizeof path, &len) != napi_ok) return ret_int(env, -EINVAL);
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.pathname = (uint64_t)(uintptr_t)path;
  a.file_flags = 0;
  long fd = bpf_call(BPF_OBJ_GET, &a);
  if (fd >= 0) fcntl((int)fd, F_SETFD, FD_CLOEXEC);
  return ret_int(env, fd);
}

static napi_value bpf_map_update(napi_env env, napi_callback_info info) {
  int32_t fd;
  void *key = NULL, *value = NULL;
  if (map_args(env, info, 3, &fd, &key, &value) != 0) return ret_int(env, -EINVAL);
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_fd = (uint32_t)fd;
  a.key = (uint64_t)(uintptr_t)key;
  a.value = (uint64_t)(uintptr_t)value;
  a.flags = BPF_ANY;
  return ret_int(env, bpf_call(BPF_MAP_UPDATE_ELEM, &a));
}

static napi_value bpf_map_delete(napi_env env, napi_callback_info info) {
  int32_t fd;
  void *key = NULL;
  if (map_args(env, info, 2, &fd, &key, NULL) != 0) return ret_int(env, -EINVAL);
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_fd = (uint32_t)fd;
  a.key = (uint64_t)(uintptr_t)key;
  return ret_int(env, bpf_call(BPF_MAP_DELETE_ELEM, &a));
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value f;
  napi_create_function(env, "bpfObjGet", NAPI_AUTO_LENGTH, bpf_obj_get, NULL, &f);
  napi_set_named_property(env, exports, "bpfObjGet", f);
  napi_create_function(env, "bpfMapUpdate", NAPI_AUTO_LENGTH, bpf_map_update, NULL, &f);
  napi_set_named_property(env, exports, "bpfMapUpdate", f);
  napi_create_function(env, "bpfMapDelete", NAPI_AUTO_LENGTH, bpf_map_delete, NULL, &f);
  napi_set_named_property(env, exports, "bpfMapDelete", f);
  napi_create_function(env, "connect6", NAPI_AUTO_LENGTH, connect6, NULL, &f);
  napi_set_named_property(env, exports, "connect6", f);
  napi_create_function(env, "tcpInfo", NAPI_AUTO_LENGTH, tcp_info_of, NULL, &f);
  napi_set_named_property(env, exports, "tcpInfo", f);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
