/**
 * Errors of the update server's model and API. A RequestError is a refused request: it carries
 * a stable code and the HTTP status the admin API answers with (the CoAP layer maps its own).
 */
import { InputError } from '../errors.js';

export type HttpStatus = 400 | 403 | 404 | 405 | 409 | 413 | 415;

export class RequestError extends InputError {
  readonly status: HttpStatus;
  constructor(status: HttpStatus, code: string, message: string) {
    super(code, message);
    this.status = status;
  }
}

export const badRequest = (code: string, message: string): RequestError => new RequestError(400, code, message);
export const notFound = (code: string, message: string): RequestError => new RequestError(404, code, message);
export const conflict = (code: string, message: string): RequestError => new RequestError(409, code, message);
