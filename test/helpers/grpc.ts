/**
 * A gRPC test service on @grpc/grpc-js, the reference pure-JS implementation,
 * used both as the backend behind the dataplane and as the client in front of
 * it. Messages are JSON (no .proto needed): gRPC framing, metadata, trailers
 * and status codes are the real thing.
 */
import * as grpc from '@grpc/grpc-js';
import type { GeneratedCertificate } from '../../dataplane/tls/x509.ts';

/** Request and response message. */
export interface Msg {
  text?: string;
  /** Server streaming: how many messages to send. */
  count?: number;
  /** Delay before answering (unary) or between messages (streaming), ms. */
  delayMs?: number;
  /** Fail with this status code. */
  failCode?: number;
  /** Echoed: which backend answered, and request metadata it saw. */
  backend?: string;
  metadata?: Record<string, string>;
  index?: number;
}

const json = {
  serialize: (m: Msg): Buffer => Buffer.from(JSON.stringify(m)),
  deserialize: (b: Buffer): Msg => JSON.parse(b.toString('utf8')) as Msg,
};

const method = (name: string, responseStream: boolean, requestStream = false) => ({
  path: `/pyserve.test.Echo/${name}`,
  requestStream,
  responseStream,
  requestSerialize: json.serialize,
  requestDeserialize: json.deserialize,
  responseSerialize: json.serialize,
  responseDeserialize: json.deserialize,
});

/** The Echo service: Unary, ServerStream, ClientStream. */
export const EchoService = {
  unary: method('Unary', false),
  serverStream: method('ServerStream', true),
  clientStream: method('ClientStream', false, true),
} satisfies grpc.ServiceDefinition;

/** Client constructor for {@link EchoService}. */
export const EchoClient = grpc.makeGenericClientConstructor(EchoService, 'Echo');
export type EchoClientT = InstanceType<typeof EchoClient> & {
  unary(req: Msg, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Msg) => void): grpc.ClientUnaryCall;
  serverStream(req: Msg, md?: grpc.Metadata, opts?: grpc.CallOptions): grpc.ClientReadableStream<Msg>;
  clientStream(md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Msg) => void): grpc.ClientWritableStream<Msg>;
};

function metadataOf(md: grpc.Metadata): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(md.getMap())) out[k] = String(v);
  return out;
}

/** A running gRPC backend. */
export interface GrpcBackend {
  readonly name: string;
  readonly port: number;
  /** Calls the backend saw cancelled (client deadline, or the proxy's reset). */
  readonly cancelled: string[];
  close(): Promise<void>;
}

/** Start an Echo backend on 127.0.0.1 (TLS when `cert` is given). */
export async function startGrpcBackend(name: string, cert?: GeneratedCertificate): Promise<GrpcBackend> {
  const server = new grpc.Server();
  const cancelled: string[] = [];
  const fail = (code: number | undefined): grpc.ServiceError | null => (code === undefined ? null : Object.assign(new Error(`failing as asked (${code}) from ${name}`), { code, details: `failing as asked (${code}) from ${name}`, metadata: new grpc.Metadata() }));
  server.addService(EchoService, {
    unary: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      call.on('cancelled', () => cancelled.push('unary'));
      const answer = (): void => {
        const trailer = new grpc.Metadata();
        trailer.set('x-trailer', `from-${name}`);
        const err = fail(call.request.failCode);
        if (err) cb(err, null, trailer);
        else cb(null, { text: call.request.text, backend: name, metadata: metadataOf(call.metadata) }, trailer);
      };
      if (call.request.delayMs) setTimeout(answer, call.request.delayMs);
      else answer();
    },
    serverStream: (call: grpc.ServerWritableStream<Msg, Msg>) => {
      call.on('cancelled', () => cancelled.push('serverStream'));
      const count = call.request.count ?? 3;
      let i = 0;
      const next = (): void => {
        if (call.cancelled) return;
        if (i === count) {
          const trailer = new grpc.Metadata();
          trailer.set('x-trailer', `streamed-${count}`);
          call.end(trailer);
          return;
        }
        call.write({ index: i++, backend: name, text: call.request.text });
        setTimeout(next, call.request.delayMs ?? 0);
      };
      const md = new grpc.Metadata();
      md.set('x-header', 'early');
      call.sendMetadata(md);
      next();
    },
    clientStream: (call: grpc.ServerReadableStream<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      const texts: string[] = [];
      call.on('data', (m: Msg) => texts.push(m.text ?? ''));
      call.on('end', () => cb(null, { text: texts.join(','), count: texts.length, backend: name }));
      call.on('cancelled', () => cancelled.push('clientStream'));
    },
  });
  const creds = cert === undefined
    ? grpc.ServerCredentials.createInsecure()
    : grpc.ServerCredentials.createSsl(null, [{ private_key: Buffer.from(cert.keyPem), cert_chain: Buffer.from(cert.certPem) }]);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))));
  return {
    name,
    port,
    cancelled,
    close: () => new Promise((resolve) => server.tryShutdown(() => resolve())),
  };
}

/** An Echo client to `target` (`host:port`); TLS with `caPem`, optionally overriding the SNI / checked name. */
export function echoClient(target: string, tls?: { caPem: string; serverName?: string }): EchoClientT {
  const creds = tls === undefined ? grpc.credentials.createInsecure() : grpc.credentials.createSsl(Buffer.from(tls.caPem));
  const options: grpc.ChannelOptions = tls?.serverName !== undefined
    ? { 'grpc.ssl_target_name_override': tls.serverName, 'grpc.default_authority': tls.serverName }
    : {};
  return new EchoClient(target, creds, options) as EchoClientT;
}

/** Unary call as a promise; resolves with the response, status and trailers, or the error. */
export function unary(client: EchoClientT, req: Msg, opts: { deadlineMs?: number; metadata?: Record<string, string> } = {}): Promise<{ res?: Msg; err?: grpc.ServiceError; trailers?: grpc.Metadata }> {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(opts.metadata ?? {})) md.set(k, v);
  const callOpts: grpc.CallOptions = opts.deadlineMs !== undefined ? { deadline: Date.now() + opts.deadlineMs } : {};
  return new Promise((resolve) => {
    let trailers: grpc.Metadata | undefined;
    const call = client.unary(req, md, callOpts, (err, res) => {
      // The status event (with trailers) may come right after the callback.
      setImmediate(() => resolve({ res, err: err ?? undefined, trailers }));
    });
    call.on('status', (s: grpc.StatusObject) => {
      trailers = s.metadata;
    });
  });
}

export { grpc };
