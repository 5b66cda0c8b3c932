"""The compiled-query layer under the repositories and the model's fast paths: SQL built once, run many times.

    from orm_kit.query.filters import parse_filter          # "status__in" -> a checked, bindable condition
    from orm_kit.query.statements import plan_for           # a model's by-key statements and row converters
    from orm_kit.query.prepared import Param, Prepared      # any peewee query compiled once, run with values
    from orm_kit.query.shapes import Shapes                 # a repository's listings, kept per query shape
    from orm_kit.query.cursors import encode, decode        # keyset pagination cursors

``filters`` is the ``field__op`` language and the orders ``find()`` accepts; ``statements`` holds what a
model's by-key paths run (``get``, ``create``, ``save``, ``Model.get_by_id``, ...); ``prepared`` compiles
a peewee query with placeholders and turns its rows into the models peewee would build; ``shapes`` keeps
a repository's compiled listings; ``cursors`` encodes and checks keyset cursors. Toolkit only: nothing
here knows the platform's models.
"""
