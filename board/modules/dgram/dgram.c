// dgram.recv_into(sock, buf) -> n or None: one datagram read into buf, allocating nothing.
//
// Why uPhone carries this: MicroPython v1.27's sockets have no recv_into/recvfrom_into, and their readinto() is the
// generic stream read (py/stream.c mp_stream_rw without MP_STREAM_RW_ONCE), which keeps reading until the buffer is
// full or the socket would block. On a UDP socket that concatenates every datagram waiting in the queue into one
// read (ports/unix/modsocket.c socket_read and ports/esp32/modsocket.c socket_stream_read are one read()/
// lwip_recvfrom() each; the loop around them is py/stream.c's): a burst of SIP requests became one "oversized"
// datagram and two RTP packets arriving together became one. recv(n) reads one datagram but allocates n bytes per
// call. This asks the same stream read for exactly one call, so it is the same code on every port's socket.
// A datagram longer than buf is cut to len(buf) by the kernel (the caller treats n == len(buf) as too long).
#include "py/runtime.h"
#include "py/stream.h"

static mp_obj_t dgram_recv_into(mp_obj_t sock_in, mp_obj_t buf_in) {
    mp_buffer_info_t bufinfo;
    mp_get_buffer_raise(buf_in, &bufinfo, MP_BUFFER_WRITE);
    mp_get_stream_raise(sock_in, MP_STREAM_OP_READ);
    int errcode;
    mp_uint_t n = mp_stream_rw(sock_in, bufinfo.buf, bufinfo.len, &errcode, MP_STREAM_RW_READ | MP_STREAM_RW_ONCE);
    if (errcode != 0) {
        if (mp_is_nonblocking_error(errcode)) {
            return mp_const_none;   // nothing waiting
        }
        mp_raise_OSError(errcode);
    }
    return MP_OBJ_NEW_SMALL_INT(n);
}
static MP_DEFINE_CONST_FUN_OBJ_2(dgram_recv_into_obj, dgram_recv_into);

static const mp_rom_map_elem_t dgram_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_dgram) },
    { MP_ROM_QSTR(MP_QSTR_recv_into), MP_ROM_PTR(&dgram_recv_into_obj) },
};
static MP_DEFINE_CONST_DICT(dgram_globals, dgram_globals_table);

const mp_obj_module_t dgram_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&dgram_globals,
};

MP_REGISTER_MODULE(MP_QSTR_dgram, dgram_module);
