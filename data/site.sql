-- Seed data for the example site, loaded into an in-memory SQLite database by
-- pages/_lib/content.py on every call. Edit it, then revalidate a page
-- (`isr revalidate /blog/hello-isr` or `--tag blog`) to see the new content.
--
-- Bodies use a tiny block format: paragraphs separated by blank lines,
-- "## " starts a heading, "- " starts a list item, a block fenced by ``` is code,
-- and `backticks` mark inline code.

CREATE TABLE authors (
    slug   TEXT PRIMARY KEY,
    name   TEXT NOT NULL,
    role   TEXT NOT NULL,
    bio    TEXT NOT NULL
);

CREATE TABLE posts (
    slug       TEXT PRIMARY KEY,
    title      TEXT NOT NULL,
    author     TEXT NOT NULL REFERENCES authors(slug),
    published  TEXT NOT NULL,             -- ISO date
    draft      INTEGER NOT NULL DEFAULT 0, -- 1: not_found until published
    summary    TEXT NOT NULL,
    body       TEXT NOT NULL
);

CREATE TABLE post_topics (
    post   TEXT NOT NULL REFERENCES posts(slug),
    topic  TEXT NOT NULL,
    PRIMARY KEY (post, topic)
);

CREATE TABLE docs (
    path      TEXT PRIMARY KEY,           -- "routing/catch-all" is served at /docs/routing/catch-all
    title     TEXT NOT NULL,
    position  INTEGER NOT NULL,           -- order in the sidebar
    body      TEXT NOT NULL
);

CREATE TABLE products (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    price_cents  INTEGER NOT NULL,
    stock        INTEGER NOT NULL,
    description  TEXT NOT NULL
);

INSERT INTO authors VALUES
('mira', 'Mira Okafor', 'Maintainer',
 'Mira wrote the first version of the cache and still reads every bug report about it. She likes boring, fast pages.'),
('tomas', 'Tomás Lindqvist', 'Contributor',
 'Tomás runs isr behind a load balancer at work and writes about what broke on the way there.'),
('ines', 'Inês Duarte', 'Docs writer',
 'Inês turns pull requests into pages people can follow. She is the reason this site has a docs section.');

INSERT INTO posts VALUES
('hello-isr', 'Hello, ISR', 'mira', '2024-03-04', 0,
 'What incremental static regeneration is, in five minutes, with the page you are reading as the example.',
'A static page is fast because nobody computes it when you ask for it. A server-rendered page is fresh because somebody does. Incremental static regeneration (ISR) keeps the first property and most of the second.

## The idea

Every page is rendered once and stored. Requests are answered from the store. When a stored page is older than its `revalidate` time, the next request still gets the stored page at once, and a new one is rendered in the background to replace it.

- Readers never wait for a render, except the very first one.
- The data behind the page is at most one `revalidate` period plus one render old.
- A page that nobody visits costs nothing.

## This post is an example

This page comes from `pages/blog/[slug].py`. Its `get_static_props` reads this text from `data/site.sql`, and `revalidate` says how long the result stays fresh. Open it with `curl -I` and look at `x-isr-cache` and `x-isr-generation`.'),

('stale-while-revalidate', 'How stale-while-revalidate works', 'tomas', '2024-04-18', 0,
 'HIT, STALE and MISS: what the x-isr-cache header tells you, and why STALE is good news.',
'Each response from an ISR page says where it came from in the `x-isr-cache` header.

- `MISS`: there was no stored page, so this request rendered it.
- `HIT`: the stored page is younger than its `revalidate` time.
- `STALE`: the stored page is older; you got it anyway, and a regeneration is running.

## One regeneration at a time

When a hundred readers arrive at a stale page, they all get the stale page and exactly one regeneration runs. When it finishes, the new generation replaces the old one in one step: nobody ever sees half of a page, and the HTML and JSON of a page always come from the same generation.

## Try it

```
curl -sI http://127.0.0.1:3000/ | grep -i x-isr
sleep 61
curl -sI http://127.0.0.1:3000/ | grep -i x-isr
sleep 1
curl -sI http://127.0.0.1:3000/ | grep -i x-isr
```

The second call answers `STALE` with the old generation id and starts the regeneration; the third answers `HIT` with a new one.'),

('on-demand-revalidation', 'On-demand revalidation', 'ines', '2024-06-02', 0,
 'Do not wait for the timer: tell the server which pages changed, by path or by tag.',
'A `revalidate` timer is a guess about how often data changes. When you know that it just changed, say so.

## By path

`isr revalidate /blog/hello-isr` renders that page again now and returns when the new generation is stored. Readers keep getting the previous generation until then.

## By tag

`get_static_props` can return `tags`. Every post on this site is tagged `blog` and `post:<slug>`, so after editing `data/site.sql` you can run:

```
isr revalidate --tag blog
```

and every page that lists posts is marked stale: the next request for each regenerates it.

## From your own code

An API function can call `await revalidate("/blog/hello-isr")` after it writes to the database, so the page is fresh before the function answers.'),

('scaling-out', 'Running isr on more than one machine', 'tomas', '2024-07-15', 1,
 'A shared Redis cache, and why each path still regenerates only once.',
'This post is a draft: `get_static_props` answers `not_found` for it.

Set `draft` to 0 for `scaling-out` in `data/site.sql`, then run `isr revalidate /blog/scaling-out`, and this page appears.

## The short version

Start every instance with `--cache redis://host:6379/0`. They share generations, and at most one of them regenerates a given path at a time.');

INSERT INTO post_topics VALUES
('hello-isr', 'basics'),
('hello-isr', 'caching'),
('stale-while-revalidate', 'caching'),
('stale-while-revalidate', 'http'),
('on-demand-revalidation', 'caching'),
('on-demand-revalidation', 'basics'),
('scaling-out', 'deployment');

INSERT INTO docs VALUES
('getting-started', 'Getting started', 1,
'Install isr into a virtual environment and serve the example site that comes with it.

```
python3 -m venv .venv
.venv/bin/pip install -e .
.venv/bin/isr build
.venv/bin/isr serve
```

Then open http://127.0.0.1:3000. A site is a folder with `pages/` (page modules and templates), `public/` (static files) and optionally `isr.json` and `.env`.'),

('routing', 'Routing', 2,
'Files under `pages/` are routes. `pages/about.py` is `/about`, `pages/blog/index.py` is `/blog`.

A file or folder whose name starts with `_` is not a route: this site keeps its layout in `pages/_layout.html` and its data code in `pages/_lib/`.

Static segments win over dynamic ones, and dynamic ones over catch-alls.'),

('routing/dynamic-routes', 'Dynamic routes', 3,
'A segment in brackets is a parameter: `pages/blog/[slug].py` serves `/blog/hello-isr` with `params["slug"] == "hello-isr"`.

`get_static_paths` lists the paths `isr build` prerenders. What happens to the others is the `fallback` setting:

- `"blocking"` (default): the first request waits while the page renders.
- `True`: the first request gets a loading page at once; the real page replaces it when ready.
- `False`: any path not listed is a 404.'),

('routing/catch-all', 'Catch-all routes', 4,
'`pages/docs/[...path].py` matches any depth below `/docs`: this page is `/docs/routing/catch-all`, so `params["path"] == ["routing", "catch-all"]`.

With double brackets, `pages/topics/[[...topic]].py`, the route also matches the bare `/topics`, and then `params` has no `topic` key.'),

('data', 'Fetching data', 5,
'A page module chooses how it is rendered by the function it defines.

- `get_static_props`: rendered once, cached, regenerated in the background (ISR).
- `get_server_side_props`: rendered on every request, never cached (SSR).
- Neither: a static page, rendered once per build.'),

('data/static-props', 'get_static_props', 6,
'`get_static_props(ctx)` returns one of:

- `{"props": {...}, "revalidate": 60, "tags": ["blog"]}`: the template is rendered with the props.
- `{"not_found": True}`: a cached 404.
- `{"redirect": {"destination": "/x", "permanent": False}}`: a cached 307 (308 when permanent).

`ctx.params` holds the route parameters and `ctx.path` the path. Query strings never reach it: a cached page is keyed by its path alone.'),

('data/server-side-props', 'get_server_side_props', 7,
'`get_server_side_props(ctx)` runs on every request. Besides `params` and `path`, its `ctx` has `query`, `headers` (lowercase names) and `cookies`.

It returns `props`, `not_found` or `redirect` like `get_static_props`, and may add `"headers": {...}` to the response. See `/now` on this site.'),

('revalidation', 'Revalidation', 8,
'A generation is fresh for `revalidate` seconds; `revalidate = False` keeps it until you revalidate it on demand. These docs pages use `revalidate = False`.

```
isr revalidate /docs/revalidation
isr revalidate --tag docs
```

The endpoint behind the command is `POST /_isr/revalidate` with `Authorization: Bearer $ISR_REVALIDATE_TOKEN`.');

INSERT INTO products VALUES
(1, 'Enamel mug', 1400, 23, 'A white enamel mug with a blue rim. Survives camping, dishwashers and being dropped on stairs.'),
(2, 'Linen notebook', 1850, 8, 'Dot-grid pages, a linen cover and a ribbon. Lies flat when open.'),
(3, 'Brass pen', 4200, 0, 'A heavy brass pen that takes standard refills. Out of stock: revalidate after restocking.'),
(4, 'Desk plant', 2500, 12, 'A small snake plant in a clay pot. Forgives a missed watering or three.');
