// i2s_duplex: one I2S controller as clock master with a TX and an RX channel on the same MCLK/BCLK/WS, for codec
// boards whose DAC and ADC share one clock pair (ES8311 + ES7210 on the ESP32-S3-Korvo-2, ES8388 on the
// ESP32-LyraT). Stock machine.I2S (ports/esp32/machine_i2s.c, v1.27.0) makes each object its own controller with
// its own clocks, never drives MCLK (gpio_cfg.mclk = I2S_GPIO_UNUSED) and always reads 32-bit slots, so it cannot
// run both directions on one pair; ESP-IDF can.
//
// Written against the ESP-IDF v5 I2S standard-mode API (driver/i2s_std.h), the full-duplex recipe of the ESP-IDF
// I2S guide ("Full-duplex": i2s_new_channel() with both a TX and an RX handle on one port shares the clock) and as
// Espressif's own board support does it (esp-bsp bsp/esp32_s3_korvo_2/src/bsp_audio.c and
// bsp/esp32_lyrat/esp32_lyrat_idf5.c bsp_audio_init(): one i2s_new_channel(&cfg, &tx, &rx), one std config with
// .mclk on the board's MCLK pin, both channels initialised and enabled). MCLK = 256 x fs (I2S_STD_CLK_DEFAULT_CONFIG).
// On the classic ESP32 MCLK can only leave through GPIO0/1/3 (IO_MUX CLK_OUT1..3, selected by the IO_MUX PIN_CTRL
// register); the ESP-IDF driver does that routing itself when .mclk is GPIO0.
//
// Python API, deliberately small (framing and channel picking live in firmware/uphone/hal/duplex.py):
//   d = i2s_duplex.I2SDuplex(id, *, sck, ws, dout, din, rate, mck=-1, bits=32, frames=320, bufs=4)
//   d.write(buf) -> bytes queued, d.readinto(buf) -> bytes read: both return at once (timeout 0), possibly 0;
//   d.deinit().  Frames are stereo, `bits`-bit slots, Philips I2S, little-endian as the DMA stores them.
//
// Not compiled in this repository's CI (no ESP-IDF there): `make firmware BOARD=<board>` builds it.

#include "py/runtime.h"
#include "py/mperrno.h"
#include "py/mphal.h"
#include "driver/i2s_std.h"

typedef struct _i2s_duplex_obj_t {
    mp_obj_base_t base;
    i2s_chan_handle_t tx;
    i2s_chan_handle_t rx;
} i2s_duplex_obj_t;

static void i2s_duplex_release(i2s_duplex_obj_t *self) {
    if (self->tx != NULL) {
        i2s_channel_disable(self->tx);
        i2s_del_channel(self->tx);
        self->tx = NULL;
    }
    if (self->rx != NULL) {
        i2s_channel_disable(self->rx);
        i2s_del_channel(self->rx);
        self->rx = NULL;
    }
}

static mp_obj_t i2s_duplex_make_new(const mp_obj_type_t *type, size_t n_args, size_t n_kw, const mp_obj_t *all_args) {
    enum { ARG_id, ARG_sck, ARG_ws, ARG_dout, ARG_din, ARG_rate, ARG_mck, ARG_bits, ARG_frames, ARG_bufs };
    static const mp_arg_t allowed_args[] = {
        { MP_QSTR_id,     MP_ARG_REQUIRED | MP_ARG_INT, {.u_int = 0} },
        { MP_QSTR_sck,    MP_ARG_KW_ONLY | MP_ARG_REQUIRED | MP_ARG_INT, {.u_int = -1} },
        { MP_QSTR_ws,     MP_ARG_KW_ONLY | MP_ARG_REQUIRED | MP_ARG_INT, {.u_int = -1} },
        { MP_QSTR_dout,   MP_ARG_KW_ONLY | MP_ARG_REQUIRED | MP_ARG_INT, {.u_int = -1} },
        { MP_QSTR_din,    MP_ARG_KW_ONLY | MP_ARG_REQUIRED | MP_ARG_INT, {.u_int = -1} },
        { MP_QSTR_rate,   MP_ARG_KW_ONLY | MP_ARG_REQUIRED | MP_ARG_INT, {.u_int = 16000} },
        { MP_QSTR_mck,    MP_ARG_KW_ONLY | MP_ARG_INT, {.u_int = -1} },
        { MP_QSTR_bits,   MP_ARG_KW_ONLY | MP_ARG_INT, {.u_int = 32} },
        { MP_QSTR_frames, MP_ARG_KW_ONLY | MP_ARG_INT, {.u_int = 320} },
        { MP_QSTR_bufs,   MP_ARG_KW_ONLY | MP_ARG_INT, {.u_int = 4} },
    };
    mp_arg_val_t args[MP_ARRAY_SIZE(allowed_args)];
    mp_arg_parse_all_kw_array(n_args, n_kw, all_args, MP_ARRAY_SIZE(allowed_args), allowed_args, args);

    mp_int_t bits = args[ARG_bits].u_int;
    if (bits != 16 && bits != 32) {
        mp_raise_ValueError(MP_ERROR_TEXT("bits must be 16 or 32"));
    }
    if (args[ARG_bufs].u_int < 2 || args[ARG_frames].u_int < 8 || args[ARG_frames].u_int > 1023) {
        mp_raise_ValueError(MP_ERROR_TEXT("bufs >= 2, frames 8..1023"));
    }

    i2s_duplex_obj_t *self = mp_obj_malloc_with_finaliser(i2s_duplex_obj_t, type);
    self->tx = NULL;
    self->rx = NULL;

    i2s_chan_config_t chan_cfg = I2S_CHANNEL_DEFAULT_CONFIG((i2s_port_t)args[ARG_id].u_int, I2S_ROLE_MASTER);
    chan_cfg.dma_desc_num = args[ARG_bufs].u_int;
    chan_cfg.dma_frame_num = args[ARG_frames].u_int;
    chan_cfg.auto_clear = true;     // a TX underrun sends silence, not the last buffer again
    check_esp_err(i2s_new_channel(&chan_cfg, &self->tx, &self->rx));

    i2s_data_bit_width_t width = bits == 32 ? I2S_DATA_BIT_WIDTH_32BIT : I2S_DATA_BIT_WIDTH_16BIT;
    i2s_std_config_t std_cfg = {
        .clk_cfg = I2S_STD_CLK_DEFAULT_CONFIG((uint32_t)args[ARG_rate].u_int),
        .slot_cfg = I2S_STD_PHILIPS_SLOT_DEFAULT_CONFIG(width, I2S_SLOT_MODE_STEREO),
        .gpio_cfg = {
            .mclk = args[ARG_mck].u_int < 0 ? I2S_GPIO_UNUSED : (gpio_num_t)args[ARG_mck].u_int,
            .bclk = (gpio_num_t)args[ARG_sck].u_int,
            .ws = (gpio_num_t)args[ARG_ws].u_int,
            .dout = (gpio_num_t)args[ARG_dout].u_int,
            .din = (gpio_num_t)args[ARG_din].u_int,
            .invert_flags = { .mclk_inv = false, .bclk_inv = false, .ws_inv = false },
        },
    };
    esp_err_t err = i2s_channel_init_std_mode(self->tx, &std_cfg);
    if (err == ESP_OK) {
        err = i2s_channel_init_std_mode(self->rx, &std_cfg);
    }
    if (err == ESP_OK) {
        err = i2s_channel_enable(self->tx);
    }
    if (err == ESP_OK) {
        err = i2s_channel_enable(self->rx);
    }
    if (err != ESP_OK) {
        i2s_duplex_release(self);
        check_esp_err(err);
    }
    return MP_OBJ_FROM_PTR(self);
}

static void i2s_duplex_check_open(i2s_duplex_obj_t *self) {
    if (self->tx == NULL || self->rx == NULL) {
        mp_raise_OSError(MP_EBADF);
    }
}

static mp_obj_t i2s_duplex_write(mp_obj_t self_in, mp_obj_t buf_in) {
    i2s_duplex_obj_t *self = MP_OBJ_TO_PTR(self_in);
    i2s_duplex_check_open(self);
    mp_buffer_info_t bufinfo;
    mp_get_buffer_raise(buf_in, &bufinfo, MP_BUFFER_READ);
    size_t done = 0;
    esp_err_t err = i2s_channel_write(self->tx, bufinfo.buf, bufinfo.len, &done, 0);
    if (err != ESP_OK && err != ESP_ERR_TIMEOUT) {      // timeout 0: a full DMA queue is not an error
        check_esp_err(err);
    }
    return MP_OBJ_NEW_SMALL_INT(done);
}
static MP_DEFINE_CONST_FUN_OBJ_2(i2s_duplex_write_obj, i2s_duplex_write);

static mp_obj_t i2s_duplex_readinto(mp_obj_t self_in, mp_obj_t buf_in) {
    i2s_duplex_obj_t *self = MP_OBJ_TO_PTR(self_in);
    i2s_duplex_check_open(self);
    mp_buffer_info_t bufinfo;
    mp_get_buffer_raise(buf_in, &bufinfo, MP_BUFFER_WRITE);
    size_t done = 0;
    esp_err_t err = i2s_channel_read(self->rx, bufinfo.buf, bufinfo.len, &done, 0);
    if (err != ESP_OK && err != ESP_ERR_TIMEOUT) {
        check_esp_err(err);
    }
    return MP_OBJ_NEW_SMALL_INT(done);
}
static MP_DEFINE_CONST_FUN_OBJ_2(i2s_duplex_readinto_obj, i2s_duplex_readinto);

static mp_obj_t i2s_duplex_deinit(mp_obj_t self_in) {
    i2s_duplex_release(MP_OBJ_TO_PTR(self_in));
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(i2s_duplex_deinit_obj, i2s_duplex_deinit);

static const mp_rom_map_elem_t i2s_duplex_locals_table[] = {
    { MP_ROM_QSTR(MP_QSTR_write), MP_ROM_PTR(&i2s_duplex_write_obj) },
    { MP_ROM_QSTR(MP_QSTR_readinto), MP_ROM_PTR(&i2s_duplex_readinto_obj) },
    { MP_ROM_QSTR(MP_QSTR_deinit), MP_ROM_PTR(&i2s_duplex_deinit_obj) },
    { MP_ROM_QSTR(MP_QSTR___del__), MP_ROM_PTR(&i2s_duplex_deinit_obj) },
};
static MP_DEFINE_CONST_DICT(i2s_duplex_locals, i2s_duplex_locals_table);

static MP_DEFINE_CONST_OBJ_TYPE(
    i2s_duplex_type,
    MP_QSTR_I2SDuplex,
    MP_TYPE_FLAG_NONE,
    make_new, i2s_duplex_make_new,
    locals_dict, &i2s_duplex_locals
    );

static const mp_rom_map_elem_t i2s_duplex_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_i2s_duplex) },
    { MP_ROM_QSTR(MP_QSTR_I2SDuplex), MP_ROM_PTR(&i2s_duplex_type) },
};
static MP_DEFINE_CONST_DICT(i2s_duplex_module_globals, i2s_duplex_module_globals_table);

const mp_obj_module_t i2s_duplex_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&i2s_duplex_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR_i2s_duplex, i2s_duplex_module);
