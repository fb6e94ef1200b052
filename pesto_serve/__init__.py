"""The PESTO service runtime: a bottle app served by waitress."""
