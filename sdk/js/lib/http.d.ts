import { type SandboxOptions } from './core.js';
export interface RawCall {
    /** JSON body (sent as application/json) or raw bytes (application/octet-stream unless `contentType`). */
    json?: unknown;
    raw?: Uint8Array;
    contentType?: string;
    timeoutSeconds: number;
    signal?: AbortSignal;
    okOn503?: boolean;
}
export declare class Http {
    #private;
    readonly baseUrl: string;
    readonly margin: number;
    constructor(apiKey?: string, baseUrl?: string, options?: SandboxOptions);
    /** A JSON call (the API's usual shape); 204 gives undefined. */
    json(method: string, path: string, body: unknown, timeoutSeconds: number, signal?: AbortSignal, okOn503?: boolean): Promise<unknown>;
    /** Any call: throws the API's error class for a 4xx/5xx (unless okOn503 and a health body); returns status, type and bytes. */
    call(method: string, path: string, o: RawCall): Promise<{
        status: number;
        contentType: string;
        body: Uint8Array;
    }>;
}
