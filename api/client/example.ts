// A typed call of the taskmanager API with openapi-fetch and the types that
// openapi-typescript generates from api/openapi.yaml (./schema.d.ts): log in,
// then list the open tasks with the access token. Paths, query parameters,
// request bodies and response bodies are all checked by the compiler: a typo
// in "/api/tasks/", `limit: "20"` or `task.titel` does not compile.
//
// Type-checked by `make test` (scripts/client.sh check), so it keeps up with
// the spec. See README.md beside this file for using it in a Vite project.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema";

export type Task = components["schemas"]["Task"];
export type ErrorBody = components["schemas"]["Error"];

/** ApiError is a non-2xx answer, with the API's one error shape. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: ErrorBody["error"]["code"] | undefined;
  readonly fields: Record<string, string[]>;
  /** Seconds to wait before retrying (429, 503), from Retry-After. */
  readonly retryAfter: number | undefined;

  constructor(response: Response, body: ErrorBody | undefined) {
    super(body?.error.message ?? `HTTP ${response.status}`);
    this.name = "ApiError";
    this.status = response.status;
    this.code = body?.error.code;
    this.fields = body?.error.fields ?? {};
    const retry = response.headers.get("Retry-After");
    this.retryAfter = retry === null ? undefined : Number(retry);
  }
}

export type Client = ReturnType<typeof createClient<paths>>;

/** connect makes a client for the server at baseUrl, e.g. "http://127.0.0.1:8000". */
export function connect(baseUrl: string): Client {
  return createClient<paths>({ baseUrl });
}

/**
 * logIn exchanges a username and password for an access token (POST
 * /api/token/). A wrong username or password is an ApiError with code
 * "authentication_failed": tell the user, do not refresh and retry.
 */
export async function logIn(client: Client, username: string, password: string): Promise<string> {
  const { data, error, response } = await client.POST("/api/token/", {
    body: { username, password },
  });
  if (error !== undefined) {
    throw new ApiError(response, error);
  }
  return data.access;
}

/** openTasks lists the first page of the caller's open tasks, newest first. */
export async function openTasks(client: Client, access: string): Promise<Task[]> {
  const { data, error, response } = await client.GET("/api/tasks/", {
    params: { query: { completed: false, ordering: "-created_at", limit: 20 } },
    headers: { Authorization: `Bearer ${access}` },
  });
  if (error !== undefined) {
    throw new ApiError(response, error);
  }
  return data.results;
}

/** main logs in and prints the open tasks, or what went wrong. */
export async function main(baseUrl: string, username: string, password: string): Promise<void> {
  const client = connect(baseUrl);
  try {
    const access = await logIn(client, username, password);
    for (const task of await openTasks(client, access)) {
      console.log(`${task.id}  ${task.title}`);
    }
  } catch (err) {
    if (!(err instanceof ApiError)) {
      throw err; // the network, not the API
    }
    switch (err.code) {
      case "authentication_failed":
        console.error("Wrong username or password.");
        break;
      case "throttled":
      case "service_unavailable":
        console.error(`Try again in ${err.retryAfter ?? 1} s: ${err.message}`);
        break;
      case "validation_failed":
        console.error(err.message, err.fields);
        break;
      default:
        console.error(`${err.status} ${err.code}: ${err.message}`);
    }
  }
}
