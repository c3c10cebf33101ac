# runner.py - the forkbox exec loop for Python, run inside the VM by the guest
# runtime. It preloads numpy and the recipe's modules, freezes the heap, then
# serves requests from the control device /dev/forkbox: read a JSON request
# (the first read is the template's snapshot point), run the code with fresh
# globals (or, for a session exec, in the session's one namespace, with the value
# of a last expression statement returned as its repr, like a notebook), answer
# {"exit_code": n[, "result": repr][, "results": [bundle, ...]]}: rich outputs are
# MIME bundles of display(obj), of plt.show() and open figures, and of a session's
# last expression. Every fork resumes in that first read, so per-exec work is kept
# tiny: each page written after the fork costs a CoW copy.
import binascii
import builtins
import gc
import io
import json
import os
import sys
# Bound once: a program that replaces os.write or compile must not break the next exec.
from os import chdir as _chdir, getcwd as _getcwd, read as _read, urandom as _urandom, write as _write
_compile = compile
_exec = exec
_eval = eval
_repr = repr
_dumps = json.dumps  # the answer's encoder: a program patching json must not break it
_StringIO = io.StringIO
_environ = os.environ

CONTROL = '/dev/forkbox'
CHUNK = 1 << 20
RESULT_MAX = 16 * 1024  # characters of a session exec's result repr kept (and of a bundle's text/plain)
# Rich outputs of one exec: at most this many bundles and this many bytes of their JSON. The
# answer must fit the mailbox's RESULT area (1020 KiB): bundles, plus the result repr as JSON
# (16 Ki characters, at most 6 bytes each escaped), plus a few bytes. What does not fit is
# dropped and flagged with "results_truncated".
RESULTS_MAX = 16
RESULTS_BYTES_MAX = 896 * 1024
# Format methods honoured, as IPython names them; binary formats travel as base64.
MIME_METHODS = (('image/png', '_repr_png_'), ('image/jpeg', '_repr_jpeg_'), ('image/svg+xml', '_repr_svg_'),
                ('text/html', '_repr_html_'), ('text/markdown', '_repr_markdown_'), ('text/latex', '_repr_latex_'),
                ('application/json', '_repr_json_'), ('application/javascript', '_repr_javascript_'),
                ('application/pdf', '_repr_pdf_'))
BINARY_MIMES = frozenset(('image/png', 'image/jpeg', 'application/pdf'))
PLAIN_TYPES = frozenset((int, float, complex, bool, str, bytes, list, tuple, dict, set, frozenset, type(None), range))
WARMUP_EXECS = 16
WARMUP_REQUEST = b'{"code": "pass", "env": null, "stdin": null}'


class _FdWriter(io.RawIOBase):
    """Raw writer that never drops bytes: loops until the runtime took all of them."""

    def __init__(self, fd):
        super().__init__()
        self._fd = fd

    def writable(self):
        return True

    def fileno(self):
        return self._fd

    def write(self, b):
        view = memoryview(b).cast('B')
        total = len(view)
        while view:
            n = _write(self._fd, view)
            view = view[n:]
        return total


def _text_stream(fd, errors):
    # write_through over a raw writer: nothing is buffered in Python, so output
    # written before os._exit() (or a crash) is already in the response area.
    return io.TextIOWrapper(_FdWriter(fd), encoding='utf-8', errors=errors, newline='\n', write_through=True)


def _parse_args(argv):
    preload = []
    i = 1
    while i < len(argv):
        if argv[i] == '--preload' and i + 1 < len(argv):
            preload = [m for m in argv[i + 1].split(',') if m]
            i += 2
        else:
            i += 1
    return preload


def _exit_status(code):
    """The process exit status CPython would give for SystemExit(code)."""
    if code is None:
        return 0, None
    if isinstance(code, int):  # bool included, like CPython
        if -(1 << 63) <= code < (1 << 63):
            return code & 0xFF, None
        return 255, None  # CPython: PyLong_AsLong fails, exit(-1)
    return 1, code


def _b64(data):
    return binascii.b2a_base64(bytes(data), newline=False).decode('ascii')


class _PyplotFinder:
    """First on sys.meta_path: when a program imports matplotlib.pyplot, its show() becomes ours
    right after the module runs (so plt.show() works in the exec that first imports pyplot).
    Every other import costs one string comparison here."""

    def __init__(self, display):
        self.display = display

    def find_spec(self, name, path=None, target=None):
        if name != 'matplotlib.pyplot' or self.display.pyplot is not None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, 'find_spec'):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, 'exec_module'):
            return spec
        display = self.display
        run_module = loader.exec_module

        def exec_module(module):
            run_module(module)
            display.hook_pyplot()
        try:
            loader.exec_module = exec_module  # this spec's own loader instance
        except (AttributeError, TypeError):
            pass
        return spec


class _Display:
    """The rich outputs of one exec, each a MIME bundle kept as its JSON text (encoded once).

    display(obj) asks the object for its formats the way IPython does (_repr_mimebundle_,
    then _repr_png_, _repr_html_, ... ; text/plain is its repr); a matplotlib Figure
    becomes a PNG (savefig at its own size and dpi) and is closed. matplotlib is never
    imported here: pyplot.show is replaced only once the program (or the template's
    preload) has imported pyplot, and figures left open are shown at the end of the exec.
    """

    def __init__(self):
        self.items = []      # JSON of {"data": {mime: value}[, "main": true]}
        self.size = 0
        self.cut = False     # a bundle was dropped: over RESULTS_MAX or RESULTS_BYTES_MAX
        self.pyplot = None   # the matplotlib.pyplot module whose show() is ours

    def reset(self):
        if self.items or self.cut:
            self.items = []
            self.size = 0
            self.cut = False

    def warn(self, what, e):
        try:
            sys.stderr.write('forkbox: display: %s failed: %s: %s\n' % (what, type(e).__name__, e))
        except Exception:  # noqa: BLE001 - a broken stream or __str__ must not kill the runner
            pass

    def builtin(self, *objs, raw=False, **_ignored):
        """display(*objs, raw=False): show each object as a rich output (raw: objs are MIME bundles)."""
        for obj in objs:
            if raw:
                if isinstance(obj, dict):
                    self.add(self.clean(obj), False)
            else:
                self.show(obj)

    def show(self, obj, main=False, text=None):
        if len(self.items) >= RESULTS_MAX:
            self.cut = True
            return
        self.add(self.bundle(obj, text), main)

    def add(self, data, main):
        if not data:
            return
        if len(self.items) >= RESULTS_MAX:
            self.cut = True
            return
        item = {'data': data, 'main': True} if main else {'data': data}
        try:
            enc = _dumps(item)
        except (TypeError, ValueError) as e:  # application/json that is not JSON
            self.warn('application/json', e)
            data.pop('application/json', None)
            enc = _dumps(item)
        if self.size + len(enc) > RESULTS_BYTES_MAX:
            self.cut = True
            return
        self.items.append(enc)
        self.size += len(enc) + 2

    def clean(self, bundle):
        data = {}
        for mime, value in bundle.items():
            if not isinstance(mime, str):
                continue
            if mime in BINARY_MIMES:
                if isinstance(value, (bytes, bytearray, memoryview)):
                    value = _b64(value)
                elif not isinstance(value, str):
                    continue
            elif mime == 'application/json':
                if value is None:
                    continue
            elif isinstance(value, (bytes, bytearray)):
                value = bytes(value).decode('utf-8', 'replace')
            elif not isinstance(value, str):
                continue
            data[mime] = value
        text = data.get('text/plain')
        if text is not None and len(text) > RESULT_MAX:
            data['text/plain'] = text[:RESULT_MAX]
            self.cut = True
        return data

    def bundle(self, obj, text=None):
        data = {}
        if type(obj) not in PLAIN_TYPES:
            png = self.figure_png(obj)
            if png is not None:
                data['image/png'] = png
            elif not isinstance(obj, type) and not hasattr(obj, '_ipython_canary_method_should_not_exist_'):
                self.formats(obj, data)
        if 'text/plain' not in data:
            if text is None:
                try:
                    text = _repr(obj)
                except Exception as e:  # noqa: BLE001 - the object's own failure
                    self.warn('repr', e)
                    text = '<%s object>' % type(obj).__name__
            data['text/plain'] = text
        return self.clean(data)

    def formats(self, obj, data):
        method = getattr(obj, '_repr_mimebundle_', None)
        if callable(method):
            try:
                got = method(include=None, exclude=None)
                if isinstance(got, tuple):
                    got = got[0]
                if isinstance(got, dict):
                    data.update(got)
            except Exception as e:  # noqa: BLE001
                self.warn('_repr_mimebundle_', e)
        for mime, name in MIME_METHODS:
            if mime in data:
                continue
            method = getattr(obj, name, None)
            if not callable(method):
                continue
            try:
                value = method()
            except Exception as e:  # noqa: BLE001
                self.warn(name, e)
                continue
            if isinstance(value, tuple):  # (data, metadata)
                value = value[0] if value else None
            if value is not None:
                data[mime] = value

    def figure_png(self, obj):
        mfig = sys.modules.get('matplotlib.figure')
        if mfig is None or not isinstance(obj, mfig.Figure):
            return None
        try:
            buf = io.BytesIO()
            obj.savefig(buf, format='png')
            return _b64(buf.getbuffer())
        except Exception as e:  # noqa: BLE001
            self.warn('savefig', e)
            return None
        finally:
            plt = sys.modules.get('matplotlib.pyplot')
            if plt is not None:
                try:
                    plt.close(obj)
                except Exception:  # noqa: BLE001
                    pass

    def hook_pyplot(self):
        """pyplot.show() shows every open figure (as Jupyter's inline backend does)."""
        plt = sys.modules.get('matplotlib.pyplot')
        if plt is None or plt is self.pyplot:
            return plt
        self.pyplot = plt

        def show(*args, **kwargs):
            """Shows every open figure as a PNG rich output of this exec and closes it."""
            self.show_figures()
        plt.show = show
        return plt

    def show_figures(self):
        plt = self.pyplot
        if plt is None:
            return
        try:
            nums = plt.get_fignums()
        except Exception as e:  # noqa: BLE001 - a program that broke pyplot
            self.warn('pyplot.get_fignums', e)
            return
        for num in nums:
            try:
                fig = plt.figure(num)
            except Exception as e:  # noqa: BLE001
                self.warn('pyplot.figure', e)
                continue
            self.show(fig)
        try:
            plt.close('all')  # shown, or dropped past the limits: either way not shown again
        except Exception:  # noqa: BLE001
            pass

    def finish(self):
        """After the program: figures it left open are shown (pyplot imported at all)."""
        if self.pyplot is not None or 'matplotlib.pyplot' in sys.modules:
            try:
                if self.hook_pyplot() is not None:
                    self.show_figures()
            except Exception as e:  # noqa: BLE001
                self.warn('showing open figures', e)


class Runner:
    def __init__(self, preload):
        self.failed_preloads = {}
        for name in preload:
            try:
                __import__(name)
            except BaseException:  # noqa: BLE001 - the template builder reads this and fails the preload step
                self.failed_preloads[name] = __import__('traceback').format_exc()
        import random
        import traceback
        self.random_seed = random._inst.seed
        self.traceback = traceback
        np = sys.modules.get('numpy')
        self.np_set_state = np.random.set_state if np is not None else None
        self.decode_json = json.JSONDecoder().raw_decode
        self.stdout = _text_stream(1, 'surrogateescape')
        self.stderr = _text_stream(2, 'backslashreplace')
        self.base_env = dict(os.environ)
        self.base_env_data = dict(os.environ._data)
        self.base_path = list(sys.path)
        self.base_cwd = '/tmp'
        try:
            _chdir(self.base_cwd)
        except OSError:
            self.base_cwd = _getcwd()
        self.session_main = None  # the __main__ module of a session, made at its first exec
        self.result = None           # repr of a session exec's last expression, sent with the answer
        self.display = _Display()    # rich outputs of the exec, sent with the answer
        builtins.display = self.display.builtin
        if self.display.hook_pyplot() is None:  # a template that preloads pyplot
            sys.meta_path.insert(0, _PyplotFinder(self.display))
        self.ast = __import__('ast')
        self.fd = self.open_control()

    def open_control(self):
        return os.open(CONTROL, os.O_RDWR)

    def read_request(self):
        first = _read(self.fd, CHUNK)  # blocks: the snapshot is taken here
        if not first:
            return b''
        chunks = [first]
        while True:
            b = _read(self.fd, CHUNK)
            if not b:
                break
            chunks.append(b)
        return chunks[0] if len(chunks) == 1 else b''.join(chunks)

    def answer(self, exit_code):
        d = self.display
        if self.result is None and not d.items and not d.cut:
            _write(self.fd, b'{"exit_code": %d}' % exit_code)
            return
        # JSON written by hand around the bundles, which are JSON already (all ASCII: ensure_ascii).
        parts = ['{"exit_code": %d' % exit_code]
        if self.result is not None:
            text = self.result
            parts.append(', "result": ' + _dumps(text[:RESULT_MAX]))
            if len(text) > RESULT_MAX:
                parts.append(', "result_truncated": true')
        if d.items:
            parts.append(', "results": [' + ', '.join(d.items) + ']')
        if d.cut:
            parts.append(', "results_truncated": true')
        parts.append('}')
        _write(self.fd, ''.join(parts).encode('ascii', 'backslashreplace'))
        self.result = None
        d.reset()

    def reset(self, req_env, stdin, session, reseed):
        if self.stdout.closed:
            self.stdout = _text_stream(1, 'surrogateescape')
        if self.stderr.closed:
            self.stderr = _text_stream(2, 'backslashreplace')
        sys.stdout = self.stdout
        sys.stderr = self.stderr
        sys.stdin = _StringIO(stdin or '')
        self.display.reset()
        self.display.hook_pyplot()
        if session:
            # A session is one program run in steps: its cwd, sys.path, environment and
            # RNG state carry over. The host asks for a reseed at the first exec of a
            # fork (a new session, a live fork, a resumed one) so siblings differ.
            if req_env:
                _environ.update(req_env)
            if reseed:
                self.reseed()
            return
        sys.argv[:] = ['-c']
        sys.path[:] = self.base_path
        sys.excepthook = sys.__excepthook__
        # Compare the raw bytes mapping: cheap, no str decoding of every variable.
        os.environ = _environ
        if req_env or _environ._data != self.base_env_data:
            _environ.clear()
            _environ.update(self.base_env)
            if req_env:
                _environ.update(req_env)
        try:
            if _getcwd() != self.base_cwd:
                _chdir(self.base_cwd)
        except OSError:
            pass
        self.reseed()

    def reseed(self):
        # Per-fork entropy: the runtime reseeds its CSPRNG from the host on every request.
        self.random_seed(_urandom(32))
        if self.np_set_state is not None:
            # numpy's legacy global RNG gets a whole fresh MT19937 key (624 words, any
            # non-zero key is a valid state). np.random.seed() would go through array
            # conversions and ufuncs that dirty ~50 more pages per exec.
            self.np_set_state(('MT19937', memoryview(_urandom(2496)).cast('I'), 624, 0, 0.0))

    def compile_session(self, source):
        """The code of a session exec, and of its last statement when that is an expression."""
        ast = self.ast
        tree = ast.parse(source, '<string>', 'exec')
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = _compile(ast.Expression(tree.body.pop().value), '<string>', 'eval')
        return _compile(tree, '<string>', 'exec'), last

    def run_code(self, source, session=False):
        last = None
        try:
            if session:
                code, last = self.compile_session(source)
            else:
                code = _compile(source, '<string>', 'exec')
        except (SyntaxError, ValueError, OverflowError, MemoryError, RecursionError) as e:
            # Like `python -c`: no traceback header for a compile error, no runner frames.
            sys.stderr.write(''.join(self.traceback.format_exception_only(type(e), e)))
            return 1
        prev_main = sys.modules.get('__main__')
        try:
            # The program runs as the __main__ module (as `python -c` does), so what it
            # defines can be found by name: pickle, and so multiprocessing, look there.
            if session:
                if self.session_main is None:
                    self.session_main = _new_main()
                main = self.session_main
            else:
                main = _new_main()
            sys.modules['__main__'] = main
            scope = main.__dict__
            _exec(code, scope)
            if last is not None:
                value = _eval(last, scope)  # noqa: S307 - the program's own code, in its sandbox
                if value is not None:
                    builtins._ = value
                    self.result = _repr(value)
                    self.display.show(value, main=True, text=self.result)
            return 0
        except SystemExit as e:
            status, message = _exit_status(e.code)
            if message is not None:
                try:
                    sys.stderr.write('%s\n' % (message,))
                except Exception:  # noqa: BLE001 - a broken __str__ must not kill the runner
                    pass
            return status
        except BaseException as e:  # noqa: BLE001 - the program's own failure
            tb = e.__traceback__.tb_next if e.__traceback__ is not None else None  # drop run_code's frame
            e.__traceback__ = tb  # the default hook prints the exception's own traceback
            try:
                sys.excepthook(type(e), e, tb)
            except BaseException:  # noqa: BLE001 - a faulty user hook: fall back to the default
                sys.__excepthook__(type(e), e, tb)
            return 1
        finally:
            # The runner's own __main__ again: a program's module (and all it holds) is
            # freed with this exec, as its namespace was, never inside the next one (the
            # warm-up's would otherwise be freed in every fork's first exec).
            sys.modules['__main__'] = prev_main

    def handle(self, payload):
        try:
            text = payload.decode('utf-8').lstrip()
            req, end = self.decode_json(text)
            if text[end:].strip():
                raise ValueError('extra data after the request')
            if not isinstance(req, dict) or not isinstance(req.get('code'), str):
                raise ValueError('request needs a string "code"')
            env = req.get('env')
            stdin = req.get('stdin')
            session = req.get('session') is True
            reseed = req.get('reseed', True) is not False
            cwd = req.get('cwd')
            if cwd is not None and not isinstance(cwd, str):
                raise ValueError('"cwd" must be a string')
            if env is not None and not (isinstance(env, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())):
                raise ValueError('"env" must map strings to strings')
            if stdin is not None and not isinstance(stdin, str):
                raise ValueError('"stdin" must be a string')
        except (ValueError, TypeError, UnicodeDecodeError) as e:
            _write(2, ('forkbox runner: bad request: %s\n' % e).encode('utf-8', 'backslashreplace'))
            return 1
        self.reset(env, stdin, session, reseed)
        if cwd:
            try:
                _chdir(cwd)
            except OSError as e:
                _write(2, ('forkbox runner: cannot enter %s: %s\n' % (cwd, e.strerror)).encode('utf-8', 'backslashreplace'))
        rc = self.run_code(req['code'], session)
        self.display.finish()
        # Ours write through; a stream the program put in their place may buffer.
        for stream in (sys.stdout, sys.stderr):
            if stream is not self.stdout and stream is not self.stderr:
                try:
                    stream.flush()
                except Exception:  # noqa: BLE001 - user-replaced or closed streams
                    pass
        return rc

    def serve(self):
        while True:
            try:
                payload = self.read_request()
                rc = self.handle(payload)
            except BaseException as e:  # noqa: BLE001 - the runner itself failed: still answer
                try:
                    _write(2, ('forkbox runner: internal error: %s: %s\n' % (type(e).__name__, e)).encode('utf-8', 'backslashreplace'))
                except BaseException:  # noqa: BLE001
                    pass
                rc = 1
            try:
                self.answer(rc)
            except OSError:
                # The program closed our descriptor: reopen the device and still answer.
                self.fd = self.open_control()
                self.answer(rc)


def main():
    runner = Runner(_parse_args(sys.argv))
    if runner.failed_preloads:
        os.write(2, ''.join('forkbox runner: preload failed: %s\n%s' % (n, tb) for n, tb in runner.failed_preloads.items()).encode())
    # Warm up the exec path before the snapshot: caches filled, bytecode specialised,
    # free lists stocked, so forks do not pay for first-time work (nothing is printed).
    for _ in range(WARMUP_EXECS):
        runner.handle(WARMUP_REQUEST)
    # Everything allocated so far is permanent: keep the collector off those pages.
    gc.collect()
    gc.freeze()
    runner.serve()


def _new_main():
    m = type(sys)('__main__')
    m.__builtins__ = builtins
    return m


if __name__ == '__main__':
    main()
