# runner.py - the forkbox exec loop for Python, run inside the VM by the guest
# runtime. It preloads numpy and the recipe's modules, freezes the heap, then
# serves requests from the control device /dev/forkbox: read a JSON request
# (the first read is the template's snapshot point), run the code with fresh
# globals (or, for a session exec, in the session's one namespace, with the value
# of a last expression statement returned as its repr, like a notebook), answer
# {"exit_code": n[, "result": repr]}. Every fork resumes in that first read, so
# per-exec work is kept tiny: each page written after the fork costs a CoW copy.
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
_StringIO = io.StringIO
_environ = os.environ

CONTROL = '/dev/forkbox'
CHUNK = 1 << 20
RESULT_MAX = 16 * 1024  # characters of a session exec's result repr kept (the result area is 60 KiB)
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
        self.session_globals = None  # the namespace of a session, made at its first exec
        self.result = None           # repr of a session exec's last expression, sent with the answer
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
        if self.result is None:
            _write(self.fd, b'{"exit_code": %d}' % exit_code)
            return
        text, self.result = self.result, None
        cut = len(text) > RESULT_MAX
        body = {'exit_code': exit_code, 'result': text[:RESULT_MAX]}
        if cut:
            body['result_truncated'] = True
        _write(self.fd, json.dumps(body).encode('utf-8', 'backslashreplace'))

    def reset(self, req_env, stdin, session, reseed):
        if self.stdout.closed:
            self.stdout = _text_stream(1, 'surrogateescape')
        if self.stderr.closed:
            self.stderr = _text_stream(2, 'backslashreplace')
        sys.stdout = self.stdout
        sys.stderr = self.stderr
        sys.stdin = _StringIO(stdin or '')
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
        try:
            if session:
                if self.session_globals is None:
                    self.session_globals = {'__name__': '__main__', '__builtins__': builtins}
                scope = self.session_globals
            else:
                scope = {'__name__': '__main__', '__builtins__': builtins}
            _exec(code, scope)
            if last is not None:
                value = _eval(last, scope)  # noqa: S307 - the program's own code, in its sandbox
                if value is not None:
                    builtins._ = value
                    self.result = _repr(value)
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


if __name__ == '__main__':
    main()
